"""A request's hold on one loaded model."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from core.types import DiarizeOptions, SpeakerTurn, Transcription, TranscribeOptions
from strategies.base import ASREngine, ModelEngine
from strategies.diarization.base import Diarizer

from .share import Share
from .slot import Slot


class ModelLease:
    """A request's hold on one loaded model: its registry entry, its engine, and how to run it."""

    def __init__(self, slot: Slot, share: Share | None = None) -> None:
        self._slot = slot
        self.spec = slot.spec
        self.share = share or Share()
        """The request's share of the model: every decode through this lease is one request to the batcher."""

    @property
    def engine(self) -> ModelEngine:
        return self._slot.engine

    @property
    def asr(self) -> ASREngine:
        engine = self._slot.engine
        assert isinstance(engine, ASREngine), f"{self.spec.id} is not a transcription model"
        return engine

    def decode(
        self, clips: Sequence[np.ndarray], options: TranscribeOptions, cancelled: threading.Event | None = None
    ) -> list[Transcription]:
        """``transcribe_clips`` through the model's batcher: the clips may share batches with other requests'."""
        assert self._slot.batcher is not None, f"{self.spec.id} is not a transcription model"
        return self._slot.batcher.decode(clips, options, cancelled, self.share)

    @property
    def diarizer(self) -> Diarizer:
        engine = self._slot.engine
        assert isinstance(engine, Diarizer), f"{self.spec.id} is not a diarization model"
        return engine

    def embed_voices(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """(clips, dim): one unit-length voice embedding per clip (``Diarizer.embed_voice``)."""
        engine = self.diarizer
        with self._slot.run_lock:
            return np.stack([engine.embed_voice(clip) for clip in clips])

    def diarize(self, audio: np.ndarray, options: DiarizeOptions) -> list[SpeakerTurn]:
        engine = self.diarizer
        with self._slot.run_lock:
            return engine.diarize(
                audio,
                num_speakers=options.num_speakers,
                min_speakers=options.min_speakers,
                max_speakers=options.max_speakers,
            )
