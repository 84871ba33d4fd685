"""Live transcription sessions: audio arrives in pieces, turns are found in it, each turn gets partial
transcripts while it grows and a full one when it ends. Transport-agnostic: the server feeds 16 kHz audio
and client commands in, and renders the events (``pipeline.live.events``) that come out. The decodes go through
the shared ``LiveTranscriber`` (``pipeline.live.transcriber``)."""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core import metrics
from core.audio import SAMPLE_RATE
from core.audio_memory import AudioReservation
from core.errors import InvalidInputError, OverloadedError, STTError, TooLargeError
from core.vad import OPENAI_SERVER_VAD

from .events import (
    Cleared,
    Committed,
    LiveEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from .logprobs import token_logprobs, words_logprobs
from .pacing import AudioPacer
from .transcriber import LiveConfig, LiveTranscriber
from .turns import LocalAgreement, TurnDetector

MIN_COMMIT_S = 0.1
"""OpenAI refuses to commit less than 100 ms of audio."""
_BUDGET_STEP = SAMPLE_RATE * 4
"""A session's buffer takes the audio memory budget a second (64 KB) at a time."""


def _bytes(samples: int) -> int:
    return samples * 4  # float32


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(11)}"


class _Audio:
    """Uncommitted 16 kHz audio: samples ``[start, end)`` of the session's timeline, held in the audio memory budget
    (growing a second ahead; appends the budget cannot hold are refused at once, with ``OverloadedError``)."""

    def __init__(self, reservation: AudioReservation) -> None:
        self.start = 0
        self.end = 0
        self._chunks: list[np.ndarray] = []
        self._reservation = reservation

    def append(self, samples: np.ndarray) -> None:
        self._reservation.cover(_bytes(self.end + len(samples) - self.start), ahead=_BUDGET_STEP, wait=False)
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
        if self._reservation.bytes > _bytes(self.end - self.start) + 2 * _BUDGET_STEP:
            self._reservation.shrink_to(_bytes(self.end - self.start) + _BUDGET_STEP)

    def release(self) -> None:
        """Drop the samples and give their bytes back."""
        self._chunks = []
        self.start = self.end
        self._reservation.release()

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
    """One client's live transcription. Call from one event loop; ``emit`` is called on it with each event.
    ``client`` names who opened it (the server passes its API key's name), for the sessions one client may have."""

    def __init__(
        self, live: LiveTranscriber, config: LiveConfig, emit: Callable[[LiveEvent], None], client: str | None = None
    ) -> None:
        self._live = live
        self._emit = emit
        self._request = live.prepare(config)
        self.config = config
        self._audio = _Audio(live.audio_budget.reserve(0, input="audio", wait=False))
        self._detector = TurnDetector(config.turn_detection or OPENAI_SERVER_VAD, live.vad)
        self._heard_speech = False
        """Manual mode: whether the buffer holds speech yet (partials of silence would be hallucinations)."""
        self._turn: _Turn | None = None
        self._previous_item: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._last_final: asyncio.Task | None = None
        self._closed = False
        self.turns = 0
        self.samples_received = 0
        self._pacer = AudioPacer(live.limits.max_audio_speed, live.limits.audio_burst_s)
        self._final_slots = asyncio.Semaphore(live.limits.finals_per_session)
        self._pending_samples = 0
        """Audio of the ended turns whose transcript has not been emitted yet."""
        live.sessions.take(client)  # last: a session refused here holds nothing
        self._client = client
        metrics.LIVE_SESSIONS.inc()

    @property
    def model_id(self) -> str:
        return self._request.spec.id

    # ------------------------------------------------------------------ client commands

    def configure(self, config: LiveConfig) -> None:
        """Apply a session update; raises (changing nothing) when it names an unknown model or language. A turn
        that is open stays open: under server VAD it ends at the next silence, in manual mode at the commit."""
        self._request = self._live.prepare(config)
        if config.turn_detection != self.config.turn_detection:
            self._detector = TurnDetector(config.turn_detection or OPENAI_SERVER_VAD, self._live.vad)
            self._detector.position = self._audio.end
            self._detector.in_speech = self._heard_speech = self._turn is not None
        self.config = config

    @property
    def audio_seconds(self) -> float:
        """Audio the client has sent in this session."""
        return self.samples_received / SAMPLE_RATE

    def admit_audio(self, seconds: float) -> None:
        """Take ``seconds`` more audio in, or refuse it (the append is dropped): OverloadedError when it comes faster
        than the pace the limits allow, or while the ended turns waiting for their transcript hold ``max_buffer_s``
        of audio (the model is behind); TooLargeError for one append longer than the pace's allowance. Nothing
        waits: a server that stopped reading a client's frames would stop reading its pings too, and time it out."""
        limits = self._live.limits
        wait = self._pacer.wait_s(seconds)
        if wait == math.inf:
            raise TooLargeError(
                f"One append may carry at most {limits.audio_burst_s:.0f} s of audio; this one carries "
                f"{seconds:.1f} s: send it in smaller pieces.",
                input="audio",
                code="input_audio_append_too_large",
            )
        if wait:
            raise OverloadedError(
                f"Audio is coming in faster than {limits.max_audio_speed:g} times real time (after "
                f"{limits.audio_burst_s:.0f} s ahead of it): this append was dropped. Send audio as it is captured, "
                "or no faster than that.",
                input="audio",
                code="input_audio_too_fast",
                retry_after_s=wait,
            )
        if self._pending_samples >= limits.max_buffer_s * SAMPLE_RATE:
            raise OverloadedError(
                f"The transcripts of this session are {self._pending_samples / SAMPLE_RATE:.0f} s of audio behind, "
                f"the most a session may be ({limits.max_buffer_s:.0f} s): this append was dropped. Try again once "
                "the next transcript has come.",
                input="audio",
                code="transcription_backlog_full",
                retry_after_s=1.0,
            )
        self._pacer.take(seconds)

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
        self.samples_received += len(samples)
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

    async def end(self) -> None:
        """The server is going away: end the open turn as a pause (server VAD) or a commit (manual mode, once it
        has heard speech) would, then wait for every committed turn's transcript."""
        if self._turn is not None and (self.config.turn_detection is not None or self._heard_speech):
            self._detector.reset()
            self._end_turn(self._audio.end, stopped=self.config.turn_detection is not None)
        await self.finish()

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
        self._audio.release()
        self._live.sessions.release(self._client)
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
        audio = self._held_copy(turn.start, end)
        self._audio.drop_before(end)
        self._heard_speech = False
        self._emit(Committed(turn.item_id, self._previous_item))
        self._previous_item = turn.item_id
        self.turns += 1
        pending = end - turn.start
        self._pending_samples += pending
        previous, ended_at = self._last_final, time.monotonic()
        self._last_final = self._spawn(self._finalize(turn, audio, pending, previous, ended_at))

    def _held_copy(self, start: int, end: int) -> np.ndarray | STTError:
        """The turn's samples, copied out of the buffer for its final decode and held in the audio memory budget
        until it is done; the budget's refusal when it cannot hold them (the turn then fails)."""
        samples = self._audio.samples(start, end)
        try:
            reservation = self._live.audio_budget.reserve(samples.nbytes, input="audio", wait=False)
        except STTError as exc:
            return exc
        return reservation.hold(samples.copy())

    async def _finalize(
        self, turn: _Turn, audio: np.ndarray | STTError, pending: int, previous: asyncio.Task | None, ended_at: float
    ) -> None:
        try:
            await self._final_transcript(turn, audio, previous, ended_at)
        finally:
            self._pending_samples -= pending

    async def _final_transcript(
        self, turn: _Turn, audio: np.ndarray | STTError, previous: asyncio.Task | None, ended_at: float
    ) -> None:
        model = self.model_id
        events: list[LiveEvent]
        try:
            if isinstance(audio, STTError):
                raise audio
            async with self._final_slots:  # the session's other ended turns wait here, not in the model's queue
                result, options = await self._live.decode(self._request, audio, True, threading.Event())
            transcript, language = result.text.strip(), options.language or result.language
            sent = len(turn.agreement.confirmed)
            logprobs = token_logprobs(result) if self._request.options.logprobs else None
            events = [TranscriptCompleted(turn.item_id, transcript, len(audio) / SAMPLE_RATE, language, logprobs)]
            if rest := turn.agreement.rest(transcript):  # the deltas add up to the transcript when they agree
                rest_logprobs = None if logprobs is None else words_logprobs(logprobs, sent, len(transcript.split()))
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
            metrics.LIVE_PARTIALS.labels(model=self.model_id, outcome="skipped").inc()
            return
        if turn.decoded_until:
            metrics.LIVE_PARTIAL_INTERVAL.labels(model=self.model_id).observe(now - turn.last_partial_at)
        turn.last_partial_at = now
        turn.decoded_until = self._audio.end
        turn.partials_started += 1
        audio = self._audio.samples(turn.start).copy()
        task = self._spawn(self._partial(turn, audio, now, turn.partials_started))
        turn.partials.add(task)
        task.add_done_callback(turn.partials.discard)

    async def _partial(self, turn: _Turn, audio: np.ndarray, started: float, number: int) -> None:
        asked = self._request.options
        options = replace(asked, temperature=0.0, language=asked.language or turn.language)
        request = replace(self._request, options=options)
        try:
            result, pinned = await self._live.decode(request, audio, False, threading.Event())
        except STTError:  # busy or unavailable: the final decode will say so if it persists
            metrics.LIVE_PARTIALS.labels(model=self.model_id, outcome="failed").inc()
            return
        finally:
            turn.partials.discard(asyncio.current_task())
        if turn.closed or number < turn.partials_applied:
            return
        turn.partials_applied = number
        turn.language = pinned.language
        metrics.LIVE_PARTIALS.labels(model=self.model_id, outcome="decoded").inc()
        sent = len(turn.agreement.confirmed)
        words = turn.agreement.update(result.text)
        if words:
            metrics.LIVE_DELTA_LATENCY.labels(model=self.model_id).observe(time.monotonic() - started)
            logprobs = None
            if self._request.options.logprobs:
                logprobs = words_logprobs(token_logprobs(result), sent, sent + len(words))
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


def _ms(sample: int) -> int:
    return sample * 1000 // SAMPLE_RATE
