"""Frame posteriors from window similarities and their Viterbi smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.diarization.embedded.resegment import frame_scores, log_posteriors, viterbi


def test_frame_scores_average_the_covering_windows():
    windows = [(0.0, 0.2), (0.1, 0.3)]
    similarities = np.array([[1.0, 0.0], [0.0, 1.0]])
    scores, counts = frame_scores(windows, similarities, n_frames=4, frame_s=0.1)
    assert counts.tolist() == [1, 2, 1, 0]
    assert scores.tolist() == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 0.0]]


def test_log_posteriors_are_normalised():
    posteriors = np.exp(log_posteriors(np.array([[0.9, 0.1], [0.5, 0.5]]), sharpness=10.0))
    assert posteriors.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert posteriors[0, 0] > 0.99
    assert posteriors[1, 0] == pytest.approx(0.5)


def test_viterbi_ignores_short_flickers_but_follows_real_changes():
    confident = np.log(np.array([[0.9, 0.1]] * 50 + [[0.1, 0.9]] * 2 + [[0.9, 0.1]] * 50 + [[0.1, 0.9]] * 60))
    path = viterbi(confident, switch_cost=5.0)
    assert path[:102].tolist() == [0] * 102  # a two-frame flicker costs more than it gains
    assert path[-50:].tolist() == [1] * 50
    assert viterbi(confident, switch_cost=0.0)[50:52].tolist() == [1, 1]


def test_viterbi_edge_cases():
    assert viterbi(np.zeros((0, 3)), 1.0).tolist() == []
    assert viterbi(np.zeros((5, 1)), 1.0).tolist() == [0] * 5
