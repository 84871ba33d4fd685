"""The embedded diarizer's older speech detectors (``bench.diarization_detectors``) against each other and against
the segmentation model that replaced them, on real multi-speaker recordings of the speech corpus."""

from __future__ import annotations

from bench.der import diarization_error_rate
from bench.diarization_detectors import OlderDetectorDiarizer


def test_far_field_detection_finds_the_meeting_speech_the_asr_settings_miss(embedded_diarizer, dev_recordings):
    audio, reference = dev_recordings["pyannote_dev00"]
    far_field = OlderDetectorDiarizer(embedded_diarizer, "far_field").diarize(audio, num_speakers=2)
    asr_settings = OlderDetectorDiarizer(embedded_diarizer, "asr").diarize(audio, num_speakers=2)
    missed = diarization_error_rate(reference, far_field)["missed"]
    assert missed < diarization_error_rate(reference, asr_settings)["missed"] - 0.05


def test_the_segmentation_model_finds_overlapped_speech_and_more_meeting_speech(embedded_diarizer, dev_recordings):
    audio, reference = dev_recordings["pyannote_sample"]
    turns = embedded_diarizer.diarize(audio, num_speakers=2)
    overlapped = [(a, b) for a in turns for b in turns if a.speaker < b.speaker and a.start < b.end and b.start < a.end]
    assert overlapped  # two speakers at once, which one label per frame cannot express
    single = OlderDetectorDiarizer(embedded_diarizer, "far_field").diarize(audio, num_speakers=2)
    assert not [(a, b) for a in single for b in single if a.speaker < b.speaker and a.start < b.end and b.start < a.end]
    missed = diarization_error_rate(reference, turns)["missed"]
    assert missed < diarization_error_rate(reference, single)["missed"] - 0.04  # 1.8% against 7.8%

    audio, reference = dev_recordings["pyannote_dev00"]
    far_field = OlderDetectorDiarizer(embedded_diarizer, "far_field").diarize(audio, num_speakers=2)
    der = diarization_error_rate(reference, embedded_diarizer.diarize(audio, num_speakers=2))["der"]
    assert der < diarization_error_rate(reference, far_field)["der"] - 0.05  # 11.4% against 19.1%
