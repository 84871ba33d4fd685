"""``bench/known_speakers.py``'s own arithmetic: the equal error rate and who speaks in a corpus file."""

from __future__ import annotations

import numpy as np
import pytest

from bench.known_speakers import _speaker_of, equal_error_rate


def test_separated_scores_have_no_equal_error():
    eer, threshold = equal_error_rate(np.array([0.8, 0.9, 0.95]), np.array([0.2, 0.5, 0.7]))
    assert eer == 0.0 and 0.7 < threshold <= 0.8


def test_overlapping_scores_meet_where_both_errors_are_alike():
    same = np.array([0.6, 0.8, 0.85, 0.9])
    different = np.array([0.3, 0.4, 0.5, 0.7])
    eer, threshold = equal_error_rate(same, different)
    assert eer == pytest.approx(0.25) and (same < threshold).mean() == (different >= threshold).mean() == 0.25


@pytest.mark.parametrize(
    ("name", "speaker"),
    [
        ("ls_to_1688-142285-0000.flac", "1688"),
        ("ls_dc_1272-141231-0002.mp3", "1272"),
        ("long_ls_to_3080-5032-0000_to_0009_concat.flac", "3080"),
        ("ljspeech_LJ001-0005.wav", "LJ"),
        ("librivox_sense_and_sensibility_01_0890.wav", "librivox"),
        ("jfk_inaugural_1961_excerpt.flac", None),
    ],
)
def test_speakers_come_from_file_names(name, speaker):
    assert _speaker_of(name) == speaker
