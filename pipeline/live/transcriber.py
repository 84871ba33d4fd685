"""Decoding for live sessions: their configuration, the limits they share, and the one transcriber that decodes
every session's turns.

Every decode goes through the shared model pool and its batcher, with a lease taken per decode: live turns
batch with each other and with file requests, take their turn round-robin, and a session holds nothing
between decodes. Partial decodes are the costly part (a turn is decoded again and again), so their cadence
adapts to load: a turn has at most one in flight per engine worker, starts the next no sooner than
``partial_interval_s`` after the last, and skips it while any turn's final decode is waiting or the partial
slots are full. Final decodes are never skipped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial

import anyio
import numpy as np

from core.audio_memory import AudioMemoryBudget
from core.types import Transcription, TranscribeOptions
from core.vad import OPENAI_SERVER_VAD, VadSettings

from ..longform import MAX_CLIP_S, transcribe_long
from ..pool import ModelPool
from ..preparation import PreparedRequest, decoding_options, prepare
from .capacity import SessionCapacity
from .turns import SpeechProbabilities, silero_probabilities


@dataclass(frozen=True)
class LiveLimits:
    partial_interval_s: float = 0.3
    """Shortest time between the starts of one turn's partial decodes."""
    partial_slots: int = 0
    """Partial decodes in flight across all sessions; 0: twice the model's engine workers."""
    min_partial_audio_s: float = 0.5
    max_partial_audio_s: float = MAX_CLIP_S - 2
    """Longer turns get no more partials (one decode window); their final decode handles any length."""
    max_buffer_s: float = 120.0
    """Uncommitted audio a session may hold: a turn this long is ended; in manual mode, appends are refused. Also
    the audio of ended turns waiting for their transcript: beyond, the session refuses audio until one is done."""
    max_audio_speed: float = 4.0
    """A session's audio is taken in no faster than this many times real time (0: no bound): faster appends are
    refused ..."""
    audio_burst_s: float = 30.0
    """... once this much audio has come in ahead of real time; one append may carry no more than this."""
    finals_per_session: int = 1
    """Final decodes one session may have in the model's queue; its other ended turns wait in the session."""
    max_sessions: int = 32
    """Sessions open at once; 0: no bound."""
    max_sessions_per_client: int = 16
    """Sessions one client (one API key) may have open at once; 0: no bound."""


@dataclass(frozen=True)
class LiveConfig:
    model_id: str | None = None
    """A registry id; None: the default model."""
    language: str | None = None
    prompt: str | None = None
    turn_detection: VadSettings | None = OPENAI_SERVER_VAD
    """None: the client commits turns itself."""
    logprobs: bool = False
    """Transcript deltas and completed transcripts carry their tokens' log-probabilities."""


class LiveTranscriber:
    """What every live session shares: the model pool, the default model, the limits, the partial slots, the count of
    open sessions."""

    def __init__(
        self,
        pool: ModelPool,
        default_model: str,
        limits: LiveLimits = LiveLimits(),
        vad: SpeechProbabilities = silero_probabilities,
        audio_budget: AudioMemoryBudget | None = None,
    ) -> None:
        self.pool = pool
        self.default_model = default_model
        self.limits = limits
        self.vad = vad
        self.sessions = SessionCapacity(limits.max_sessions, limits.max_sessions_per_client)
        self.audio_budget = audio_budget or AudioMemoryBudget()
        """The memory decoded audio may take, shared with file requests: sessions' buffers and ended turns."""
        self._threads = anyio.CapacityLimiter(256)
        self._finals = 0
        self._partials = 0
        self._workers = 1

    def prepare(self, config: LiveConfig) -> PreparedRequest:
        """The model and decoding options of a configuration; raises for an unknown model or language."""
        asked = TranscribeOptions(language=config.language, initial_prompt=config.prompt, logprobs=config.logprobs)
        return prepare(self.pool, config.model_id, self.default_model, asked)

    @property
    def partials_per_turn(self) -> int:
        """Partial decodes one turn may have in flight: one per engine worker, so that on a CPU with a worker per
        core a lone speaker's hypotheses come twice as often (the first delta needs two that agree)."""
        return max(1, self._workers)

    def partial_allowed(self) -> bool:
        slots = self.limits.partial_slots or 2 * self._workers
        return self._finals == 0 and self._partials < slots

    async def decode(
        self, request: PreparedRequest, audio: np.ndarray, final: bool, cancelled: threading.Event
    ) -> tuple[Transcription, TranscribeOptions]:
        """One decode of a turn's audio on a pool thread; cancelling the caller withdraws its queued clips."""
        if final:
            self._finals += 1
        else:
            self._partials += 1
        try:
            # A worker thread keeps its last job's arguments while it idles: the audio goes in a box it empties.
            run = partial(self._decode_blocking, request, [audio], final, cancelled)
            del audio
            return await anyio.to_thread.run_sync(run, limiter=self._threads, abandon_on_cancel=True)
        finally:
            cancelled.set()  # a no-op once done; on cancellation, the batcher withdraws the clips still queued
            if final:
                self._finals -= 1
            else:
                self._partials -= 1

    def _decode_blocking(
        self, request: PreparedRequest, box: list[np.ndarray], final: bool, cancelled: threading.Event
    ) -> tuple[Transcription, TranscribeOptions]:
        audio = box.pop()
        with self.pool.use(request.spec) as lease:
            self._workers = lease.asr.workers
            options, _ = decoding_options(lease, audio, request.options)
            decode = partial(lease.decode, cancelled=cancelled)
            if final:
                return transcribe_long(audio, options, decode, batch_size=None), options
            return decode([audio], options)[0], options
