"""The diarization interface: who spoke when, as a list of speaker turns."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from core.audio import SAMPLE_RATE
from core.devices import release_memory
from core.errors import InvalidInputError
from core.types import SpeakerTurn

from ..base import ModelEngine

__all__ = [
    "SAMPLE_RATE",
    "Diarizer",
    "SpeakerTurn",
    "as_mono",
    "check_speaker_bounds",
    "relabel_in_order",
    "release_memory",
    "speaker_label",
]


class Diarizer(ModelEngine):
    """An engine that splits 16 kHz mono float32 audio into speaker turns, and may embed voices to recognise
    known speakers (``embed_voice``)."""

    same_voice_similarity: float | None = None
    """The cosine similarity of two ``embed_voice`` embeddings from which they are taken for one voice: measured
    for each engine (different encoders' similarities do not compare). None: the engine embeds no voices."""

    @abstractmethod
    def load(self) -> None:
        """Load the models; a no-op when already loaded."""

    @abstractmethod
    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        """Turns sorted by start, labelled ``SPEAKER_00``, ``SPEAKER_01``, ... in order of first appearance."""

    def embed_voice(self, audio: np.ndarray) -> np.ndarray:
        """One unit-length embedding of the voice in 16 kHz mono ``audio`` (a reference clip, or one speaker's
        turns joined), made the way the engine's diarization tells voices apart. An engine that cannot embed
        voices refuses known speakers."""
        raise InvalidInputError(
            f"This server's diarizer ({type(self).__name__}) cannot recognise voices, so known speakers cannot be "
            "named: use the embedded diarizer.",
            input="known_speaker_names",
        )

    @abstractmethod
    def unload(self) -> None:
        """Drop the models and give their memory back."""


def speaker_label(index: int) -> str:
    return f"SPEAKER_{index:02d}"


def relabel_in_order(turns: list[SpeakerTurn]) -> list[SpeakerTurn]:
    """Sort turns by start and rename speakers ``SPEAKER_00``, ... in order of first appearance."""
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    names: dict[str, str] = {}
    for turn in ordered:
        names.setdefault(turn.speaker, speaker_label(len(names)))
    return [SpeakerTurn(names[t.speaker], t.start, t.end) for t in ordered]


def check_speaker_bounds(num_speakers: int | None, min_speakers: int | None, max_speakers: int | None) -> None:
    """Raise ValueError for speaker counts that can never be satisfied."""
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ValueError(f"min_speakers ({min_speakers}) is greater than max_speakers ({max_speakers})")


def as_mono(audio: np.ndarray) -> np.ndarray:
    """``audio`` as a contiguous 1-D float32 array; a leading or trailing axis of length 1 is dropped."""
    samples = np.squeeze(np.asarray(audio, dtype=np.float32))
    if samples.ndim > 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {np.shape(audio)}")
    return np.ascontiguousarray(samples.reshape(-1))
