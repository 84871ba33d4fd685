"""The embedded diarizer's clustering: a count asked for comes out (synthetic embeddings)."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.diarization.embedded.clustering import cluster, refine, unit_rows
from strategies.diarization.embedded.settings import EmbeddedSettings


def _speakers(count: int, per_speaker: int, rng: np.random.Generator, spread: float = 0.2) -> np.ndarray:
    """``per_speaker`` noisy embeddings around each of ``count`` random voices, speaker by speaker."""
    voices = unit_rows(rng.standard_normal((count, 64)))
    return np.vstack([voice + spread * rng.standard_normal((per_speaker, 64)) / 8 for voice in voices])


def test_a_polish_round_that_would_empty_a_cluster_is_not_taken():
    """Two points between two big clusters: their own mean is further from each than the big clusters' means are,
    so a round of spherical k-means would hand them over and leave two clusters where three were asked for."""
    e = np.eye(3)
    x = unit_rows(np.vstack([np.tile(e[0], (5, 1)), np.tile(e[1], (5, 1)), e[0] + 0.5 * e[2], e[1] + 0.5 * e[2]]))
    labels = np.array([0] * 5 + [1] * 5 + [2, 2])
    assert np.bincount(refine(x, labels, 3), minlength=3).min() >= 1


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_the_count_given_comes_out_when_few_windows_are_long(count):
    """Far-field or quick exchanges: most speech regions are shorter than ``min_embed_s``; when the long windows
    are fewer than the count, all windows are clustered (they were capped at the long ones' number)."""
    rng = np.random.default_rng(count)
    embeddings = _speakers(count, 6, rng)
    durations = np.full(len(embeddings), 0.6)
    durations[[0, 6]] = 1.5  # two long windows, of the first two speakers
    labels = cluster(embeddings, durations, count, None, None, EmbeddedSettings())
    assert len(np.unique(labels)) == count
    # Each voice is one speaker.
    assert all(len(np.unique(labels[i * 6 : (i + 1) * 6])) == 1 for i in range(count))


@pytest.mark.parametrize("count", [2, 4, 6])
def test_min_speakers_is_a_floor_on_the_estimate(count):
    rng = np.random.default_rng(10 + count)
    embeddings = _speakers(count, 8, rng)
    durations = np.full(len(embeddings), 1.5)
    assert len(np.unique(cluster(embeddings, durations, None, count, None, EmbeddedSettings()))) >= count
    assert len(np.unique(cluster(embeddings, durations, count, None, None, EmbeddedSettings()))) == count
