"""Live transcription sessions: audio arrives in pieces, turns are found in it, each turn gets partial
transcripts while it grows and a full one when it ends. Transport-agnostic: the server feeds 16 kHz audio
and client commands in, and renders the events (``pipeline.live_events``) that come out.

Every decode goes through the shared model pool and its batcher, with a lease taken per decode: live turns
batch with each other and with file requests, take their turn round-robin, and a session holds nothing
between decodes. Partial decodes are the costly part (a turn is decoded again and again), so their cadence
adapts to load: a turn has at most one in flight per engine worker, starts the next no sooner than
``partial_interval_s`` after the last, and skips it while any turn's final decode is waiting or the partial
slots are full. Final decodes are never skipped.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import anyio
import numpy as np

from core import metrics
from core.audio import SAMPLE_RATE
from core.errors import InvalidInputError, STTError, TooLargeError
from core.registry import ModelSpec
from core.types import TokenLogprob, Transcription, TranscribeOptions
from core.vad import OPENAI_SERVER_VAD, VadSettings

from ..language import fit_to_model, pin_language, requested_language
from ..live_events import (
    Cleared,
    Committed,
    LiveEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from .turns import LocalAgreement, SpeechProbabilities, TurnDetector, silero_probabilities
from ..longform import MAX_CLIP_S, transcribe_long
from ..model_pool import ModelPool
from ..transcriber import check_engine_can_honour

MIN_COMMIT_S = 0.1
"""OpenAI refuses to commit less than 100 ms of audio."""


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
    """Uncommitted audio a session may hold: a turn this long is ended; in manual mode, appends are refused."""


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


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(11)}"


class LiveTranscriber:
    """What every live session shares: the model pool, the default model, the limits, the partial slots."""

    def __init__(
        self,
        pool: ModelPool,
        default_model: str,
        limits: LiveLimits = LiveLimits(),
        vad: SpeechProbabilities = silero_probabilities,
    ) -> None:
        self.pool = pool
        self.default_model = default_model
        self.limits = limits
        self.vad = vad
        self._threads = anyio.CapacityLimiter(256)
        self._finals = 0
        self._partials = 0
        self._workers = 1

    def resolve(self, config: LiveConfig) -> tuple[ModelSpec, TranscribeOptions]:
        """The model and decoding options of a configuration; raises for an unknown model or language."""
        spec = self.pool.registry.get(config.model_id or self.default_model, kind="transcription")
        asked = TranscribeOptions(language=config.language, initial_prompt=config.prompt, logprobs=config.logprobs)
        options = requested_language(asked, spec)
        multilingual = self.pool.known_multilingual(spec.id)
        if multilingual is not None:
            fit_to_model(options, multilingual, spec)
        return spec, options

    @property
    def partials_per_turn(self) -> int:
        """Partial decodes one turn may have in flight: one per engine worker, so that on a CPU with a worker per
        core a lone speaker's hypotheses come twice as often (the first delta needs two that agree)."""
        return max(1, self._workers)

    def partial_allowed(self) -> bool:
        slots = self.limits.partial_slots or 2 * self._workers
        return self._finals == 0 and self._partials < slots

    async def decode(
        self, spec: ModelSpec, audio: np.ndarray, options: TranscribeOptions, final: bool, cancelled: threading.Event
    ) -> tuple[Transcription, TranscribeOptions]:
        """One decode of a turn's audio on a pool thread; cancelling the caller withdraws its queued clips."""
        if final:
            self._finals += 1
        else:
            self._partials += 1
        try:
            run = partial(self._decode_blocking, spec, audio, options, final, cancelled)
            return await anyio.to_thread.run_sync(run, limiter=self._threads, abandon_on_cancel=True)
        finally:
            cancelled.set()  # a no-op once done; on cancellation, the batcher withdraws the clips still queued
            if final:
                self._finals -= 1
            else:
                self._partials -= 1

    def _decode_blocking(
        self, spec: ModelSpec, audio: np.ndarray, options: TranscribeOptions, final: bool, cancelled: threading.Event
    ) -> tuple[Transcription, TranscribeOptions]:
        with self.pool.use(spec) as lease:
            self._workers = lease.asr.workers
            check_engine_can_honour(options, lease.asr, spec)
            options = pin_language(lease.asr, audio, fit_to_model(options, lease.asr.is_multilingual, spec))
            decode = partial(lease.decode, cancelled=cancelled)
            if final:
                return transcribe_long(audio, options, decode, batch_size=None), options
            return decode([audio], options)[0], options


class _Audio:
    """Uncommitted 16 kHz audio: samples ``[start, end)`` of the session's timeline."""

    def __init__(self) -> None:
        self.start = 0
        self.end = 0
        self._chunks: list[np.ndarray] = []

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples)
        self.end += len(samples)

    def samples(self, start: int | None = None, end: int | None = None) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        whole = self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)
        first = max(start if start is not None else self.start, self.start) - self.start
        last = min(end if end is not None else self.end, self.end) - self.start
        return whole[first:last]

    def drop_before(self, sample: int) -> None:
        sample = min(max(sample, self.start), self.end)
        if sample == self.start:
            return
        rest = self.samples(sample)
        self._chunks = [rest.copy()] if len(rest) else []
        self.start = sample

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


@dataclass(eq=False)
class _Turn:
    item_id: str
    start: int
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    partials: set[asyncio.Task] = field(default_factory=set)
    """Partial decodes in flight: up to one per engine worker, started ``partial_interval_s`` apart."""
    partials_started: int = 0
    partials_applied: int = 0
    """The number of the latest partial whose hypothesis was used: an older one finishing later is dropped."""
    last_partial_at: float = -1e9
    decoded_until: int = 0
    """The end of the audio the last partial decoded."""
    closed: bool = False
    language: str | None = None
    """Detected by the first partial (multilingual models, no language asked): one language for the turn."""


class LiveSession:
    """One client's live transcription. Call from one event loop; ``emit`` is called on it with each event."""

    def __init__(self, live: LiveTranscriber, config: LiveConfig, emit: Callable[[LiveEvent], None]) -> None:
        self._live = live
        self._emit = emit
        self._spec, self._options = live.resolve(config)
        self.config = config
        self._audio = _Audio()
        self._detector = TurnDetector(config.turn_detection or OPENAI_SERVER_VAD, live.vad)
        self._heard_speech = False
        """Manual mode: whether the buffer holds speech yet (partials of silence would be hallucinations)."""
        self._turn: _Turn | None = None
        self._previous_item: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._last_final: asyncio.Task | None = None
        self._closed = False
        self.turns = 0
        metrics.LIVE_SESSIONS.inc()

    @property
    def model_id(self) -> str:
        return self._spec.id

    # ------------------------------------------------------------------ client commands

    def configure(self, config: LiveConfig) -> None:
        """Apply a session update; raises (changing nothing) when it names an unknown model or language. A turn
        that is open stays open: under server VAD it ends at the next silence, in manual mode at the commit."""
        self._spec, self._options = self._live.resolve(config)
        if config.turn_detection != self.config.turn_detection:
            self._detector = TurnDetector(config.turn_detection or OPENAI_SERVER_VAD, self._live.vad)
            self._detector.position = self._audio.end
            self._detector.in_speech = self._heard_speech = self._turn is not None
        self.config = config

    def append(self, samples: np.ndarray) -> None:
        """16 kHz float32 audio, continuing the session's timeline."""
        limit_s = self._live.limits.max_buffer_s
        if self.config.turn_detection is None and self._audio.seconds + len(samples) / SAMPLE_RATE > limit_s:
            raise TooLargeError(
                f"The input audio buffer is full ({limit_s:.0f} s): commit or clear it.",
                input="audio",
                code="input_audio_buffer_full",
            )
        self._audio.append(samples)
        for edge in self._detector.feed(samples):
            if self.config.turn_detection is None:
                self._heard_speech = self._heard_speech or edge.started
            elif edge.started:
                self._start_turn(edge.sample)
            elif self._turn is not None:
                self._end_turn(edge.sample, stopped=True)
        if self.config.turn_detection is not None:
            if self._turn is None:
                self._audio.drop_before(self._audio.end - self.config.turn_detection.prefix_samples)
            elif self._audio.seconds >= limit_s:
                self._detector.reset()
                self._end_turn(self._audio.end, stopped=True)
        elif self._turn is None and self._audio.end > self._audio.start:
            self._turn = _Turn(new_id("item"), self._audio.start)
        self._maybe_partial()

    def commit(self) -> None:
        if self._audio.seconds < MIN_COMMIT_S:
            raise InvalidInputError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but "
                f"buffer only has {self._audio.seconds * 1000:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        if self._turn is None:
            self._turn = _Turn(new_id("item"), self._audio.start)
        self._detector.reset()
        self._end_turn(self._audio.end, stopped=False)

    def clear(self) -> None:
        if self._turn is not None:
            self._abandon_partial(self._turn)
            self._turn = None
        self._detector.reset()
        self._heard_speech = False
        self._audio.drop_before(self._audio.end)
        self._emit(Cleared())

    async def finish(self) -> None:
        """Wait until every committed turn's transcript has been emitted."""
        while self._last_final is not None and not self._last_final.done():
            await asyncio.wait({self._last_final})

    async def close(self) -> None:
        """The client has gone: drop every decode at once (queued clips are withdrawn) and the audio."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._turn = None
        self._audio = _Audio()
        metrics.LIVE_SESSIONS.dec()

    # ------------------------------------------------------------------ turns

    def _start_turn(self, sample: int) -> None:
        assert self.config.turn_detection is not None
        start = max(sample - self.config.turn_detection.prefix_samples, self._audio.start)
        self._turn = _Turn(new_id("item"), start)
        self._emit(SpeechStarted(self._turn.item_id, _ms(start)))

    def _end_turn(self, end: int, stopped: bool) -> None:
        turn, self._turn = self._turn, None
        assert turn is not None
        self._abandon_partial(turn)
        if stopped:
            self._emit(SpeechStopped(turn.item_id, _ms(end)))
        audio = self._audio.samples(turn.start, end).copy()
        self._audio.drop_before(end)
        self._heard_speech = False
        self._emit(Committed(turn.item_id, self._previous_item))
        self._previous_item = turn.item_id
        self.turns += 1
        previous, ended_at = self._last_final, time.monotonic()
        self._last_final = self._spawn(self._finalize(turn, audio, previous, ended_at))

    async def _finalize(self, turn: _Turn, audio: np.ndarray, previous: asyncio.Task | None, ended_at: float) -> None:
        model = self._spec.id
        events: list[LiveEvent]
        try:
            result, options = await self._live.decode(self._spec, audio, self._options, True, threading.Event())
            transcript, language = result.text.strip(), options.language or result.language
            sent = len(turn.agreement.confirmed)
            logprobs = _token_logprobs(result) if self._options.logprobs else None
            events = [TranscriptCompleted(turn.item_id, transcript, len(audio) / SAMPLE_RATE, language, logprobs)]
            if rest := turn.agreement.rest(transcript):  # the deltas add up to the transcript when they agree
                rest_logprobs = None if logprobs is None else _words_logprobs(logprobs, sent, len(transcript.split()))
                events.insert(0, TranscriptDelta(turn.item_id, rest, rest_logprobs))
            metrics.LIVE_TURNS.labels(model=model, outcome="completed").inc()
        except STTError as exc:
            events = [TranscriptFailed(turn.item_id, exc)]
            metrics.LIVE_TURNS.labels(model=model, outcome="failed").inc()
        if previous is not None and not previous.done():  # transcripts go out in the order of their turns
            await asyncio.wait({previous})
        metrics.LIVE_COMPLETED_LAG.labels(model=model).observe(time.monotonic() - ended_at)
        for event in events:
            self._emit(event)

    # ------------------------------------------------------------------ partials

    def _maybe_partial(self) -> None:
        turn, limits = self._turn, self._live.limits
        if turn is None or len(turn.partials) >= self._live.partials_per_turn or self._closed:
            return
        if self.config.turn_detection is None and not self._heard_speech:
            return
        seconds = (self._audio.end - turn.start) / SAMPLE_RATE
        now = time.monotonic()
        if not limits.min_partial_audio_s <= seconds <= limits.max_partial_audio_s:
            return
        if now - turn.last_partial_at < limits.partial_interval_s or self._audio.end == turn.decoded_until:
            return
        if not self._live.partial_allowed():
            metrics.LIVE_PARTIALS.labels(model=self._spec.id, outcome="skipped").inc()
            return
        if turn.decoded_until:
            metrics.LIVE_PARTIAL_INTERVAL.labels(model=self._spec.id).observe(now - turn.last_partial_at)
        turn.last_partial_at = now
        turn.decoded_until = self._audio.end
        turn.partials_started += 1
        audio = self._audio.samples(turn.start).copy()
        task = self._spawn(self._partial(turn, audio, now, turn.partials_started))
        turn.partials.add(task)
        task.add_done_callback(turn.partials.discard)

    async def _partial(self, turn: _Turn, audio: np.ndarray, started: float, number: int) -> None:
        options = replace(self._options, temperature=0.0, language=self._options.language or turn.language)
        try:
            result, pinned = await self._live.decode(self._spec, audio, options, False, threading.Event())
        except STTError:  # busy or unavailable: the final decode will say so if it persists
            metrics.LIVE_PARTIALS.labels(model=self._spec.id, outcome="failed").inc()
            return
        finally:
            turn.partials.discard(asyncio.current_task())
        if turn.closed or number < turn.partials_applied:
            return
        turn.partials_applied = number
        turn.language = pinned.language
        metrics.LIVE_PARTIALS.labels(model=self._spec.id, outcome="decoded").inc()
        sent = len(turn.agreement.confirmed)
        words = turn.agreement.update(result.text)
        if words:
            metrics.LIVE_DELTA_LATENCY.labels(model=self._spec.id).observe(time.monotonic() - started)
            logprobs = None
            if self._options.logprobs:
                logprobs = _words_logprobs(_token_logprobs(result), sent, sent + len(words))
            self._emit(TranscriptDelta(turn.item_id, turn.agreement.delta(words), logprobs))
        self._maybe_partial()

    def _abandon_partial(self, turn: _Turn) -> None:
        turn.closed = True
        for task in list(turn.partials):
            task.cancel()
        turn.partials.clear()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _token_logprobs(result: Transcription) -> list[TokenLogprob]:
    return [token for segment in result.segments for token in segment.logprobs or []]


def _words_logprobs(tokens: list[TokenLogprob], first: int, end: int) -> list[TokenLogprob]:
    """The tokens that spell words ``first`` to ``end`` (exclusive) of the text they spell, words being runs of
    non-space characters as ``str.split`` finds them; a token belongs to the word of its first non-space byte."""
    chosen, word, in_word = [], -1, False
    for token in tokens:
        own = None
        for byte in token.bytes:
            if byte in _ASCII_SPACE:
                in_word = False
                continue
            if not in_word:
                word, in_word = word + 1, True
            own = word if own is None else own
        if own is not None and first <= own < end:
            chosen.append(token)
    return chosen


_ASCII_SPACE = frozenset(b" \t\n\r\x0b\x0c")


def _ms(sample: int) -> int:
    return sample * 1000 // SAMPLE_RATE
