"""The embedded diarizer's older speech detectors (``bench.diarization_detectors``) against each other and against
the segmentation model that replaced them, on real multi-speaker recordings of the speech corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.der import diarization_error_rate, read_rttm
from bench.diarization_detectors import OlderDetectorDiarizer
from core.audio import decode_audio
from strategies.diarization.base import SpeakerTurn
from strategies.diarization.embedded import EmbeddedDiarizer


@pytest.fixture
def diarizer(embedded_diarizer: EmbeddedDiarizer) -> EmbeddedDiarizer:
    return embedded_diarizer


@pytest.fixture(scope="module")
def recordings(corpus_dir: Path) -> dict[str, tuple[np.ndarray, list[SpeakerTurn]]]:
    multi = corpus_dir / "multi"
    names = ("pyannote_sample", "pyannote_dev00")
    return {name: (decode_audio(multi / f"{name}.wav"), read_rttm(multi / f"{name}.rttm")) for name in names}


def test_far_field_detection_finds_the_meeting_speech_the_asr_settings_miss(diarizer, recordings):
    audio, reference = recordings["pyannote_dev00"]
    far_field = OlderDetectorDiarizer(diarizer, "far_field").diarize(audio, num_speakers=2)
    asr_settings = OlderDetectorDiarizer(diarizer, "asr").diarize(audio, num_speakers=2)
    missed = diarization_error_rate(reference, far_field)["missed"]
    assert missed < diarization_error_rate(reference, asr_settings)["missed"] - 0.05


def test_the_segmentation_model_finds_overlapped_speech_and_more_meeting_speech(diarizer, recordings):
    audio, reference = recordings["pyannote_sample"]
    turns = diarizer.diarize(audio, num_speakers=2)
    overlapped = [(a, b) for a in turns for b in turns if a.speaker < b.speaker and a.start < b.end and b.start < a.end]
    assert overlapped  # two speakers at once, which one label per frame cannot express
    single = OlderDetectorDiarizer(diarizer, "far_field").diarize(audio, num_speakers=2)
    assert not [(a, b) for a in single for b in single if a.speaker < b.speaker and a.start < b.end and b.start < a.end]
    missed = diarization_error_rate(reference, turns)["missed"]
    assert missed < diarization_error_rate(reference, single)["missed"] - 0.04  # 1.8% against 7.8%

    audio, reference = recordings["pyannote_dev00"]
    far_field = OlderDetectorDiarizer(diarizer, "far_field").diarize(audio, num_speakers=2)
    der = diarization_error_rate(reference, diarizer.diarize(audio, num_speakers=2))["der"]
    assert der < diarization_error_rate(reference, far_field)["der"] - 0.05  # 11.4% against 19.1%
