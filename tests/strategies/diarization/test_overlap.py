"""Overlapped speech around speaker changes."""

from __future__ import annotations

import numpy as np

from strategies.diarization.overlap import overlap_runs


def _scores(rows: list[tuple[float, float]]) -> np.ndarray:
    return np.array(rows, dtype=float)


def test_frames_before_a_change_that_score_alike_get_the_next_speaker_too():
    labels = np.array([0] * 10 + [1] * 10)
    scores = _scores([(0.9, 0.2)] * 6 + [(0.6, 0.59)] * 4 + [(0.2, 0.9)] * 10)
    runs = overlap_runs(labels, np.ones(20, bool), scores, margin=0.02, max_frames=50, min_frames=2)
    assert runs == [(1, 6, 10)]


def test_frames_after_a_change_can_keep_the_previous_speaker():
    labels = np.array([0] * 10 + [1] * 10)
    scores = _scores([(0.9, 0.2)] * 10 + [(0.6, 0.6)] * 3 + [(0.2, 0.9)] * 7)
    runs = overlap_runs(labels, np.ones(20, bool), scores, margin=0.02, max_frames=50, min_frames=2)
    assert runs == [(0, 10, 13)]


def test_no_overlap_when_the_speakers_are_clearly_apart_or_runs_are_too_short_or_too_long():
    labels = np.array([0] * 10 + [1] * 10)
    clear = _scores([(0.9, 0.2)] * 10 + [(0.2, 0.9)] * 10)
    assert overlap_runs(labels, np.ones(20, bool), clear, margin=0.02, max_frames=50, min_frames=2) == []
    brief = _scores([(0.9, 0.2)] * 9 + [(0.5, 0.5)] + [(0.2, 0.9)] * 10)
    assert overlap_runs(labels, np.ones(20, bool), brief, margin=0.02, max_frames=50, min_frames=2) == []
    alike = _scores([(0.5, 0.5)] * 20)
    runs = overlap_runs(labels, np.ones(20, bool), alike, margin=0.02, max_frames=3, min_frames=1)
    assert runs == [(1, 7, 10), (0, 10, 13)]  # capped at max_frames each side


def test_changes_across_non_speech_are_not_overlap():
    labels = np.array([0] * 10 + [1] * 10)
    speech = np.ones(20, bool)
    speech[9:11] = False
    alike = _scores([(0.5, 0.5)] * 20)
    assert overlap_runs(labels, speech, alike, margin=0.02, max_frames=50, min_frames=1) == []
