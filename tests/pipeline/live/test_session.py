"""Live sessions on a fake engine and an energy VAD: turns, partial deltas, commits, limits, clean-up."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from core.audio import SAMPLE_RATE
from core.errors import InvalidInputError, TooLargeError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from core.types import Segment, TokenLogprob, Transcription, TranscribeOptions
from pipeline.live import (
    Cleared,
    Committed,
    LiveConfig,
    LiveLimits,
    LiveSession,
    LiveTranscriber,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from pipeline.live.turns import WINDOW
from pipeline.pool import ModelPool
from strategies.base import RuntimeContext
from tests.fakes import FakeStrategy

WORDS = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing matches".split()
WORDS_PER_SECOND = 3


def energy_vad(windows: np.ndarray) -> np.ndarray:
    """Speech probability 1 for a window with sound, 0 for silence (the first window is context)."""
    frames = windows.reshape(-1, WINDOW)[1:]
    return (np.sqrt((frames**2).mean(axis=1)) > 0.01).astype(np.float32)


class TalkingStrategy(FakeStrategy):
    """Hears WORDS_PER_SECOND words per second of sound: a longer clip's transcript extends a shorter one's."""

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        self.calls.append(options)
        self.batches.append(len(clips))
        if FakeStrategy.gate is not None:
            assert FakeStrategy.gate.wait(10), "test gate never opened"
        results = []
        for clip in clips:
            frames = clip[: len(clip) // 160 * 160].reshape(-1, 160)
            voiced = float((np.sqrt((frames**2).mean(axis=1)) > 0.01).sum()) / 100
            text = " ".join(WORDS[: int(voiced * WORDS_PER_SECOND + 0.01)])
            segments = [Segment(id=0, start=0.0, end=len(clip) / SAMPLE_RATE, text=text)] if text else []
            if options.logprobs and segments:
                segments[0].logprobs = word_tokens(text.split())
            results.append(Transcription(text=text, language="en", duration=len(clip) / SAMPLE_RATE, segments=segments))
        return results


def word_tokens(words: list[str]) -> list[TokenLogprob]:
    """Whisper-like tokens for ``words``: each with its leading space, the longer ones in two pieces; the i-th word's
    tokens have log-probability -i/100, so a test can tell whose they are."""
    tokens = []
    for i, word in enumerate(words):
        pieces = [" " + word[:2], word[2:]] if len(word) > 4 else [" " + word]
        tokens += [TokenLogprob(token=p, bytes=list(p.encode()), logprob=-i / 100) for p in pieces]
    return tokens


def talking_pool() -> ModelPool:
    registry = ModelRegistry([ModelSpec(id="talker", engine="ctranslate2", model="x", language="en")])
    return ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=lambda spec, rt: TalkingStrategy(spec, rt))


def live_transcriber(pool: ModelPool | None = None, **limits) -> LiveTranscriber:
    limits = {"partial_interval_s": 0.0, **limits}
    return LiveTranscriber(pool or talking_pool(), "talker", LiveLimits(**limits), vad=energy_vad)


def tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


async def stream(session: LiveSession, audio: np.ndarray, chunk_s: float = 0.1, pace_s: float = 0.01) -> None:
    step = int(chunk_s * SAMPLE_RATE)
    for start in range(0, len(audio), step):
        session.append(audio[start : start + step])
        await asyncio.sleep(pace_s)


@pytest.fixture(autouse=True)
def _no_gate():
    FakeStrategy.gate = None
    yield
    FakeStrategy.gate = None


# ---------------------------------------------------------------------- sessions


def run(coroutine):
    return asyncio.run(coroutine)


def test_server_vad_turn_gets_started_deltas_stopped_committed_and_completed():
    async def go():
        events = []
        session = LiveSession(live_transcriber(), LiveConfig(), events.append)
        await stream(session, np.concatenate([silence(0.5), tone(2.0), silence(1.0)]))
        await session.finish()
        await session.close()
        return events

    events = run(go())
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and SpeechStopped in kinds and Committed in kinds
    assert kinds[-1] is TranscriptCompleted
    started, stopped = events[0], next(e for e in events if isinstance(e, SpeechStopped))
    assert abs(started.audio_start_ms - 200) <= 40  # speech at 500 ms less 300 ms of prefix padding
    assert abs(stopped.audio_end_ms - 3000) <= 70  # speech end at 2.5 s plus 500 ms of silence
    deltas = [e.delta for e in events if isinstance(e, TranscriptDelta)]
    assert len(deltas) >= 2
    assert kinds.index(TranscriptDelta) < kinds.index(SpeechStopped)  # partials while the speaker speaks
    completed = events[-1]
    assert completed.transcript == " ".join(WORDS[:6]) and "".join(deltas) == completed.transcript
    assert abs(completed.audio_seconds - 2.8) < 0.1
    assert {e.item_id for e in events if hasattr(e, "item_id")} == {started.item_id}


def test_two_turns_are_two_items_linked_in_order():
    async def go():
        events = []
        session = LiveSession(live_transcriber(), LiveConfig(), events.append)
        await stream(session, np.concatenate([tone(1.0), silence(0.8), tone(1.0), silence(0.8)]))
        await session.finish()
        await session.close()
        return events

    events = run(go())
    commits = [e for e in events if isinstance(e, Committed)]
    completed = [e for e in events if isinstance(e, TranscriptCompleted)]
    assert len(commits) == 2 and commits[0].previous_item_id is None
    assert commits[1].previous_item_id == commits[0].item_id
    assert [c.item_id for c in completed] == [c.item_id for c in commits]


def test_manual_mode_commits_and_clears_only_when_asked():
    async def go():
        events = []
        session = LiveSession(live_transcriber(), LiveConfig(turn_detection=None), events.append)
        with pytest.raises(InvalidInputError) as empty:
            session.commit()
        assert empty.value.code == "input_audio_buffer_commit_empty"
        await stream(session, np.concatenate([tone(1.0), silence(1.0)]))
        assert not any(isinstance(e, (SpeechStarted, SpeechStopped, Committed)) for e in events)
        session.commit()
        await session.finish()
        await stream(session, tone(0.5))
        session.clear()
        with pytest.raises(InvalidInputError):
            session.commit()
        await session.close()
        return events

    events = run(go())
    kinds = [type(e) for e in events]
    assert Committed in kinds and kinds[-1] is Cleared
    completed = next(e for e in events if isinstance(e, TranscriptCompleted))
    assert completed.transcript == " ".join(WORDS[:3]) and abs(completed.audio_seconds - 2.0) < 0.01


def test_manual_buffer_has_a_limit():
    async def go():
        session = LiveSession(live_transcriber(max_buffer_s=1.0), LiveConfig(turn_detection=None), lambda e: None)
        session.append(silence(0.9))
        with pytest.raises(TooLargeError) as full:
            session.append(silence(0.2))
        assert full.value.code == "input_audio_buffer_full"
        await session.close()

    run(go())


def test_a_vad_turn_at_the_buffer_limit_is_ended():
    async def go():
        events = []
        session = LiveSession(live_transcriber(max_buffer_s=1.0), LiveConfig(), events.append)
        await stream(session, tone(1.5))
        await session.finish()
        await session.close()
        return events

    assert any(isinstance(e, TranscriptCompleted) for e in run(go()))


class TwoWorkerTalkingStrategy(TalkingStrategy):
    @property
    def workers(self) -> int:
        return 2


def test_a_turn_has_a_partial_in_flight_per_engine_worker_and_deltas_still_add_up():
    registry = ModelRegistry([ModelSpec(id="talker", engine="ctranslate2", model="x", language="en")])
    pool = ModelPool(
        registry, RuntimeContext("cpu", HubAccess()), factory=lambda spec, rt: TwoWorkerTalkingStrategy(spec, rt)
    )
    live = live_transcriber(pool)

    async def go():
        events = []
        session = LiveSession(live, LiveConfig(), events.append)
        await stream(session, np.concatenate([silence(0.3), tone(0.6)]))  # a first partial learns the workers
        await asyncio.sleep(0.2)
        FakeStrategy.gate = threading.Event()
        await stream(session, tone(0.6))
        in_flight = live._partials
        FakeStrategy.gate.set()
        await stream(session, np.concatenate([tone(1.0), silence(1.0)]))
        await session.finish()
        await session.close()
        return in_flight, events

    in_flight, events = run(go())
    pool.close()
    assert in_flight == 2
    deltas = [e.delta for e in events if isinstance(e, TranscriptDelta)]
    completed = events[-1]
    assert isinstance(completed, TranscriptCompleted) and completed.transcript == " ".join(WORDS[:6])
    assert "".join(deltas) == completed.transcript  # out-of-order partials never make a delta go back


def test_closing_mid_turn_frees_leases_queued_clips_and_threads():
    pool = talking_pool()
    live = live_transcriber(pool)
    FakeStrategy.gate = threading.Event()
    threads_before = threading.active_count()

    async def go():
        session = LiveSession(live, LiveConfig(), lambda e: None)
        await stream(session, tone(1.5))  # a partial decode is now stuck in the engine
        session.commit()  # and a final decode queued behind it
        await asyncio.sleep(0.1)
        assert pool.state("talker").leases >= 1
        await session.close()

    run(go())
    FakeStrategy.gate.set()
    deadline = threading.Event()
    for _ in range(40):
        if pool.state("talker").leases == 0:
            break
        deadline.wait(0.05)
    assert pool.state("talker").leases == 0
    assert live._partials == 0 and live._finals == 0
    pool.close()
    assert threading.active_count() <= threads_before + 1  # the batcher's worker, now stopping


# ---------------------------------------------------------------------- log-probabilities


def spelled(tokens) -> str:
    return b"".join(bytes(t.bytes) for t in tokens).decode()


def _session_events(config: LiveConfig, pool: ModelPool | None = None) -> list:
    async def go():
        events = []
        session = LiveSession(live_transcriber(pool), config, events.append)
        await stream(session, np.concatenate([silence(0.5), tone(2.0), silence(1.0)]))
        await session.finish()
        await session.close()
        return events

    return run(go())


def test_asked_for_logprobs_deltas_and_the_transcript_carry_the_tokens_that_spell_them():
    events = _session_events(LiveConfig(logprobs=True))
    deltas = [e for e in events if isinstance(e, TranscriptDelta)]
    completed = events[-1]
    assert isinstance(completed, TranscriptCompleted) and len(deltas) >= 2
    assert spelled(completed.logprobs).strip() == completed.transcript == " ".join(WORDS[:6])
    for delta in deltas:
        assert spelled(delta.logprobs).split() == delta.delta.split()
    assert [t.logprob for d in deltas for t in d.logprobs] == [t.logprob for t in completed.logprobs]
    assert "".join(d.delta for d in deltas) == completed.transcript  # the text is as without log-probabilities


def test_without_logprobs_no_event_carries_any():
    events = _session_events(LiveConfig())
    assert all(e.logprobs is None for e in events if isinstance(e, TranscriptDelta | TranscriptCompleted))
    assert events[-1].transcript == " ".join(WORDS[:6])


def test_an_engine_without_logprobs_fails_the_turn_with_a_clear_error():
    class Silent(TalkingStrategy):
        returns_logprobs = False

    registry = ModelRegistry([ModelSpec(id="talker", engine="ctranslate2", model="x", language="en")])
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=lambda spec, rt: Silent(spec, rt))
    events = _session_events(LiveConfig(logprobs=True), pool)
    failed = events[-1]
    assert isinstance(failed, TranscriptFailed) and failed.error.input == "token_logprobs"
    assert "log-probabilities" in str(failed.error)
