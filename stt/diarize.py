"""Speaker diarization for a request: one shared diarizer, loaded on first use, run on the decoded audio."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from diarization.assign import assign_speakers
from diarization.base import Diarizer, SpeakerTurn
from diarization.factory import create_diarizer

from .devices import release_memory
from .errors import InvalidRequestError, ModelUnavailableError
from .model_files import HubAccess
from .model_pool import load_failure_reason
from .results import Segment, Transcription

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiarizeOptions:
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 32:
                raise InvalidRequestError(f"{name} must be between 1 and 32.", param=name)
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise InvalidRequestError("min_speakers is greater than max_speakers.", param="min_speakers")


class DiarizationRunner:
    """Owns the configured diarizer: loads it once (on first use), runs one diarization at a time."""

    def __init__(self, engine: str, make_diarizer: Callable[[], Diarizer]) -> None:
        self.engine = engine
        self._make = make_diarizer
        self._diarizer: Diarizer | None = None
        self._lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._diarizer is not None and self._diarizer.is_loaded

    def diarize(self, audio: np.ndarray, options: DiarizeOptions) -> list[SpeakerTurn]:
        with self._lock:
            diarizer = self._loaded()
            return diarizer.diarize(
                audio,
                num_speakers=options.num_speakers,
                min_speakers=options.min_speakers,
                max_speakers=options.max_speakers,
            )

    def unload(self) -> None:
        with self._lock:
            if self._diarizer is not None:
                self._diarizer.unload()
            self._diarizer = None
        release_memory(settle=True)

    def _loaded(self) -> Diarizer:
        if self._diarizer is None:
            diarizer = self._make()
            try:
                diarizer.load()
            except Exception as exc:
                diarizer.unload()
                release_memory(settle=True)
                logger.warning("loading the %s diarizer failed: %s", self.engine, exc)
                raise ModelUnavailableError(
                    f"The {self.engine!r} diarization engine could not be loaded: {load_failure_reason(exc)}",
                    param="diarize",
                    code="diarizer_unavailable",
                ) from exc
            self._diarizer = diarizer
        return self._diarizer



def attribute_speakers(result: Transcription, turns: list[SpeakerTurn], keep_words: bool) -> Transcription:
    """The transcript with a speaker on every segment and word, by time overlap with the turns.

    A segment whose words change speaker is split there, so each segment is one speaker's turn.
    """
    attributed = assign_speakers(result.segments, turns)
    segments: list[Segment] = []
    for segment, labelled in zip(result.segments, attributed, strict=True):
        words = [w.model_copy(update={"speaker": lw.speaker}) for w, lw in zip(segment.words, labelled.words, strict=True)]
        for piece in _split_at_speaker_changes(segment.model_copy(update={"speaker": labelled.speaker, "words": words})):
            segments.append(piece.model_copy(update={"id": len(segments), "words": piece.words if keep_words else []}))
    return result.model_copy(update={"segments": segments})


def _split_at_speaker_changes(segment: Segment) -> list[Segment]:
    runs = [list(group) for _, group in groupby(segment.words, key=lambda w: w.speaker)]
    if len(runs) <= 1:
        return [segment]
    return [
        segment.model_copy(
            update={
                "start": run[0].start,
                "end": run[-1].end,
                "text": "".join(w.word for w in run),
                "words": run,
                "speaker": run[0].speaker,
                "tokens": [],  # the segment's tokens cannot be split by word
            }
        )
        for run in runs
    ]


def build_runner(engine: str, pyannote_model: str, hub: HubAccess, device: str) -> DiarizationRunner | None:
    """The configured engine, or None when diarization is switched off."""
    if engine == "none":
        return None
    if engine == "pyannote":
        cache_dir = str(hub.cache_dir) if hub.cache_dir else None
        return DiarizationRunner(
            engine,
            lambda: create_diarizer("pyannote", model=pyannote_model, token=hub.token, cache_dir=cache_dir, device=device),
        )
    return DiarizationRunner(engine, lambda: create_diarizer("embedded", device=device))
