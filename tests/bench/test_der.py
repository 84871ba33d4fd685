from __future__ import annotations

import pytest

from strategies.diarization.base import SpeakerTurn
from bench.der import diarization_error_rate, read_rttm

REFERENCE = [SpeakerTurn("alice", 0.0, 10.0), SpeakerTurn("bob", 10.0, 20.0)]


def turns(*spans: tuple[str, float, float]) -> list[SpeakerTurn]:
    return [SpeakerTurn(*span) for span in spans]


def test_perfect_hypothesis_scores_zero():
    scores = diarization_error_rate(REFERENCE, REFERENCE)
    assert scores["der"] == 0.0
    assert scores["reference_s"] == pytest.approx(20.0)


def test_labels_are_mapped_optimally():
    swapped = turns(("SPEAKER_01", 0.0, 10.0), ("SPEAKER_00", 10.0, 20.0))
    assert diarization_error_rate(REFERENCE, swapped)["der"] == 0.0


def test_missed_speech():
    scores = diarization_error_rate(REFERENCE, turns(("A", 0.0, 10.0), ("B", 10.0, 15.0)))
    assert scores["missed_s"] == pytest.approx(5.0)
    assert scores["missed"] == pytest.approx(0.25)
    assert scores["false_alarm"] == scores["confusion"] == 0.0
    assert scores["der"] == pytest.approx(0.25)


def test_false_alarm():
    scores = diarization_error_rate(REFERENCE, turns(("A", 0.0, 10.0), ("B", 10.0, 25.0)))
    assert scores["false_alarm_s"] == pytest.approx(5.0)
    assert scores["der"] == pytest.approx(0.25)


def test_confusion_counts_time_given_to_the_wrong_speaker():
    scores = diarization_error_rate(REFERENCE, turns(("A", 0.0, 12.0), ("B", 12.0, 20.0)))
    assert scores["confusion_s"] == pytest.approx(2.0)
    assert scores["missed"] == scores["false_alarm"] == 0.0
    assert scores["der"] == pytest.approx(0.1)


def test_one_hypothesis_speaker_maps_to_one_reference_speaker_only():
    scores = diarization_error_rate(REFERENCE, turns(("A", 0.0, 20.0)))
    assert scores["confusion_s"] == pytest.approx(10.0)
    assert scores["der"] == pytest.approx(0.5)


def test_overlapping_reference_speech_counts_each_speaker():
    reference = turns(("alice", 0.0, 10.0), ("bob", 5.0, 15.0))  # 20 s of speech, 5 s of it overlapped
    single = turns(("A", 0.0, 10.0), ("B", 10.0, 15.0))
    scores = diarization_error_rate(reference, single)
    assert scores["reference_s"] == pytest.approx(20.0)
    assert scores["missed_s"] == pytest.approx(5.0)  # one of the two overlapped speakers is never found
    assert scores["confusion_s"] == 0.0
    both = turns(("A", 0.0, 10.0), ("B", 5.0, 15.0))
    assert diarization_error_rate(reference, both)["der"] == 0.0


def test_collar_skips_reference_boundaries():
    late = turns(("A", 0.0, 10.2), ("B", 10.2, 20.0))
    assert diarization_error_rate(REFERENCE, late)["confusion_s"] == pytest.approx(0.2)
    assert diarization_error_rate(REFERENCE, late, collar=0.25)["der"] == 0.0


def test_empty_inputs():
    assert diarization_error_rate([], [])["der"] == 0.0
    assert diarization_error_rate(REFERENCE, [])["der"] == pytest.approx(1.0)
    assert diarization_error_rate([], REFERENCE)["der"] == float("inf")


def test_read_rttm(tmp_path):
    path = tmp_path / "x.rttm"
    path.write_text(
        "SPEAKER rec 1 7.550 0.800 <NA> <NA> spk2 <NA> <NA>\n"
        "SPEAKER rec 1 6.690 0.430 <NA> <NA> spk1 <NA> <NA>\n"
        "SPEAKER other 1 1.000 1.000 <NA> <NA> spk9 <NA> <NA>\n"
        "\n"
    )
    assert read_rttm(path, file_id="rec") == turns(("spk1", 6.69, 6.69 + 0.43), ("spk2", 7.55, 7.55 + 0.8))
    assert len(read_rttm(path)) == 3
