"""The embedded diarizer's clustering: a count asked for comes out (synthetic embeddings)."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.diarization.embedded.clustering import cluster, estimate_count, refine, unit_rows
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


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 8])
def test_the_count_is_estimated_from_one_voice_to_eight(count):
    rng = np.random.default_rng(20 + count)
    embeddings = _speakers(count, 12, rng, spread=0.5)
    assert estimate_count(unit_rows(embeddings), 10, EmbeddedSettings()) == count


def test_a_cluster_too_small_to_be_a_speaker_is_not_counted():
    rng = np.random.default_rng(3)
    embeddings = np.vstack([_speakers(2, 30, rng, spread=0.5), _speakers(1, 2, rng, spread=0.5)])
    assert estimate_count(unit_rows(embeddings), 10, EmbeddedSettings()) == 2


def test_the_estimate_reads_a_bounded_sample_of_a_long_recordings_windows():
    """Linkage holds every pair of the windows it reads: a 4-hour recording's 50,000 windows would need 10 GB."""
    rng = np.random.default_rng(4)
    embeddings = unit_rows(_speakers(3, 20_000, rng, spread=0.5))
    settings = EmbeddedSettings(count_sample_windows=500)
    assert estimate_count(embeddings, 10, settings) == 3


def test_the_count_can_be_estimated_on_other_embeddings_of_the_same_windows():
    """A second encoder separates who is who; the count comes from the embeddings its threshold was measured on.
    Here the second encoder's three voices are tight but close together: counted on them, they are one speaker."""
    rng = np.random.default_rng(7)
    counted = _speakers(3, 12, rng, spread=0.5)  # three voices
    base, offsets = unit_rows(rng.standard_normal((1, 64))), unit_rows(rng.standard_normal((3, 64)))
    separated = np.vstack([base + 0.15 * offset + 0.005 * rng.standard_normal((12, 64)) for offset in offsets])
    durations = np.full(len(counted), 1.5)
    assert len(np.unique(cluster(separated, durations, None, None, None, EmbeddedSettings()))) == 1
    labels = cluster(separated, durations, None, None, None, EmbeddedSettings(), counted=counted)
    assert len(np.unique(labels)) == 3
    assert all(len(np.unique(labels[i * 12 : (i + 1) * 12])) == 1 for i in range(3))
