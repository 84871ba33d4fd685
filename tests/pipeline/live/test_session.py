"""Live sessions on a fake engine and an energy VAD: turns, partial deltas, commits, limits, clean-up."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from core.audio import SAMPLE_RATE
from core.errors import InvalidInputError, TooLargeError
from pipeline.live import (
    Cleared,
    Committed,
    LiveConfig,
    LiveSession,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from pipeline.pool import ModelPool
from tests.fakes import WORDS, FakeModels, TalkingEngine
from tests.support.audio import silence, tone
from tests.support.tokens import spelled
from tests.support.transcribers import live_transcriber, talking_pool


async def stream(session: LiveSession, audio: np.ndarray, chunk_s: float = 0.1, pace_s: float = 0.01) -> None:
    step = int(chunk_s * SAMPLE_RATE)
    for start in range(0, len(audio), step):
        session.append(audio[start : start + step])
        await asyncio.sleep(pace_s)


# ---------------------------------------------------------------------- sessions


def run(coroutine):
    return asyncio.run(coroutine)


def test_server_vad_turn_gets_started_deltas_stopped_committed_and_completed(fake_models):
    async def go():
        events = []
        session = LiveSession(live_transcriber(fake_models), LiveConfig(), events.append)
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


def test_two_turns_are_two_items_linked_in_order(fake_models):
    async def go():
        events = []
        session = LiveSession(live_transcriber(fake_models), LiveConfig(), events.append)
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


def test_manual_mode_commits_and_clears_only_when_asked(fake_models):
    async def go():
        events = []
        session = LiveSession(live_transcriber(fake_models), LiveConfig(turn_detection=None), events.append)
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


def test_manual_buffer_has_a_limit(fake_models):
    async def go():
        live = live_transcriber(fake_models, max_buffer_s=1.0)
        session = LiveSession(live, LiveConfig(turn_detection=None), lambda e: None)
        session.append(silence(0.9))
        with pytest.raises(TooLargeError) as full:
            session.append(silence(0.2))
        assert full.value.code == "input_audio_buffer_full"
        await session.close()

    run(go())


def test_a_vad_turn_at_the_buffer_limit_is_ended(fake_models):
    async def go():
        events = []
        session = LiveSession(live_transcriber(fake_models, max_buffer_s=1.0), LiveConfig(), events.append)
        await stream(session, tone(1.5))
        await session.finish()
        await session.close()
        return events

    assert any(isinstance(e, TranscriptCompleted) for e in run(go()))


class TwoWorkerTalkingStrategy(TalkingEngine):
    @property
    def workers(self) -> int:
        return 2


def test_a_turn_has_a_partial_in_flight_per_engine_worker_and_deltas_still_add_up(fake_models):
    pool = talking_pool(fake_models, TwoWorkerTalkingStrategy)
    live = live_transcriber(fake_models, pool)

    async def go():
        events = []
        session = LiveSession(live, LiveConfig(), events.append)
        await stream(session, np.concatenate([silence(0.3), tone(0.6)]))  # a first partial learns the workers
        await asyncio.sleep(0.2)
        fake_models.gate = threading.Event()
        await stream(session, tone(0.6))
        in_flight = live._partials
        fake_models.gate.set()
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


def test_closing_mid_turn_frees_leases_queued_clips_and_threads(fake_models):
    pool = talking_pool(fake_models)
    live = live_transcriber(fake_models, pool)
    fake_models.gate = threading.Event()
    threads_before = threading.active_count()

    async def go():
        session = LiveSession(live, LiveConfig(), lambda e: None)
        await stream(session, tone(1.5))  # a partial decode is now stuck in the engine
        session.commit()  # and a final decode queued behind it
        await asyncio.sleep(0.1)
        assert pool.state("talker").leases >= 1
        await session.close()

    run(go())
    fake_models.gate.set()
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


def _session_events(fake_models: FakeModels, config: LiveConfig, pool: ModelPool | None = None) -> list:
    async def go():
        events = []
        session = LiveSession(live_transcriber(fake_models, pool), config, events.append)
        await stream(session, np.concatenate([silence(0.5), tone(2.0), silence(1.0)]))
        await session.finish()
        await session.close()
        return events

    return run(go())


def test_asked_for_logprobs_deltas_and_the_transcript_carry_the_tokens_that_spell_them(fake_models):
    events = _session_events(fake_models, LiveConfig(logprobs=True))
    deltas = [e for e in events if isinstance(e, TranscriptDelta)]
    completed = events[-1]
    assert isinstance(completed, TranscriptCompleted) and len(deltas) >= 2
    assert spelled(completed.logprobs).strip() == completed.transcript == " ".join(WORDS[:6])
    for delta in deltas:
        assert spelled(delta.logprobs).split() == delta.delta.split()
    assert [t.logprob for d in deltas for t in d.logprobs] == [t.logprob for t in completed.logprobs]
    assert "".join(d.delta for d in deltas) == completed.transcript  # the text is as without log-probabilities


def test_without_logprobs_no_event_carries_any(fake_models):
    events = _session_events(fake_models, LiveConfig())
    assert all(e.logprobs is None for e in events if isinstance(e, TranscriptDelta | TranscriptCompleted))
    assert events[-1].transcript == " ".join(WORDS[:6])


def test_an_engine_without_logprobs_fails_the_turn_with_a_clear_error(fake_models):
    class Silent(TalkingEngine):
        returns_logprobs = False

    events = _session_events(fake_models, LiveConfig(logprobs=True), talking_pool(fake_models, Silent))
    failed = events[-1]
    assert isinstance(failed, TranscriptFailed) and failed.error.input == "token_logprobs"
    assert "log-probabilities" in str(failed.error)


def test_ending_a_session_finalises_its_open_turn(fake_models):
    async def go(config: LiveConfig, audio: np.ndarray) -> list:
        events = []
        session = LiveSession(live_transcriber(fake_models), config, events.append)
        await stream(session, audio)
        await session.end()
        await session.close()
        return events

    vad_events = run(go(LiveConfig(), np.concatenate([silence(0.5), tone(2.0)])))  # no pause: the turn is open
    assert [type(e) for e in vad_events].count(TranscriptCompleted) == 1
    assert isinstance(vad_events[-1], TranscriptCompleted) and SpeechStopped in [type(e) for e in vad_events]
    manual = run(go(LiveConfig(turn_detection=None), tone(1.0)))
    assert isinstance(manual[-1], TranscriptCompleted) and Committed in [type(e) for e in manual]
    nothing_heard = run(go(LiveConfig(turn_detection=None), silence(1.0)))
    assert not any(isinstance(e, TranscriptCompleted) for e in nothing_heard)
