"""Live sessions on a fake engine and an energy VAD: turns, partial deltas, commits, limits, clean-up."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from core.audio import SAMPLE_RATE
from core.audio_memory import AudioMemoryBudget
from core.errors import InvalidInputError, OverloadedError, TooLargeError
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


def test_a_sessions_buffer_and_its_ended_turns_are_held_in_the_audio_budget_until_done(fake_models):
    budget = AudioMemoryBudget()
    second = SAMPLE_RATE * 4  # bytes

    async def go():
        session = LiveSession(
            live_transcriber(fake_models, audio_budget=budget), LiveConfig(turn_detection=None), lambda e: None
        )
        session.append(tone(3.0))
        assert 3 * second <= budget.held_bytes <= 4 * second  # the buffer, a second ahead
        fake_models.gate = threading.Event()  # the turn's final decode waits
        session.commit()  # the buffer is emptied (and keeps a second ahead); the committed turn's copy is held
        assert 3 * second <= budget.held_bytes <= 4 * second
        await asyncio.sleep(0.05)
        fake_models.gate.set()
        await session.finish()
        assert budget.held_bytes <= second, "the turn's copy was let go once transcribed"
        session.append(tone(1.0))
        await session.close()
        assert budget.held_bytes == 0

    run(go())


def test_audio_the_budget_cannot_hold_is_refused_and_the_session_lives_on(fake_models):
    budget = AudioMemoryBudget(2**20)
    second = SAMPLE_RATE * 4

    async def go():
        events = []
        live = live_transcriber(fake_models, audio_budget=budget)
        session = LiveSession(live, LiveConfig(turn_detection=None), events.append)
        others = budget.reserve(2**20 - 3 * second)  # file requests hold the rest
        session.append(tone(2.0))
        with pytest.raises(OverloadedError) as full:
            session.append(tone(1.5))
        assert full.value.input == "audio" and full.value.retry_after_s
        session.commit()  # the turn's copy does not fit beside the buffer: the turn fails, the session goes on
        await session.finish()
        assert isinstance(events[-1], TranscriptFailed) and events[-1].error.code == "audio_memory_full"
        others.release()
        session.append(tone(1.0))
        session.commit()
        await session.finish()
        assert isinstance(events[-1], TranscriptCompleted)
        await session.close()
        assert budget.held_bytes == 0

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


# ---------------------------------------------------------------------- one session's share of the model


def test_a_sessions_ended_turns_wait_in_the_session_one_final_decode_at_a_time(fake_models):
    """Turns ended faster than the model transcribes them wait in the session, not in the model's queue: the pool
    sees one final decode of the session at a time, and the transcripts still come in the order of the turns."""
    pool = talking_pool(fake_models)
    live = live_transcriber(fake_models, pool, partial_slots=1)
    fake_models.gate = threading.Event()
    leases = []

    async def go():
        events = []
        session = LiveSession(live, LiveConfig(turn_detection=None), events.append)
        for _ in range(12):
            session.append(tone(0.5))
            session.commit()
        for _ in range(10):
            await asyncio.sleep(0.02)
            leases.append(pool.state("talker").leases)
        fake_models.gate.set()
        await session.finish()
        await session.close()
        return events

    events = run(go())
    pool.close()
    assert max(leases) <= 2  # one final decode, and at most one partial (the partial slots)
    commits = [e.item_id for e in events if isinstance(e, Committed)]
    completed = [e.item_id for e in events if isinstance(e, TranscriptCompleted)]
    assert len(commits) == 12 and completed == commits


def test_audio_is_refused_while_ended_turns_hold_the_buffer_limit(fake_models):
    live = live_transcriber(fake_models, max_buffer_s=2.5)
    fake_models.gate = threading.Event()

    async def go():
        session = LiveSession(live, LiveConfig(turn_detection=None), lambda e: None)
        for _ in range(3):  # 3 s of ended turns waiting for the model, over the 2.5 s limit
            session.admit_audio(1.0)
            session.append(tone(1.0))
            session.commit()
        with pytest.raises(OverloadedError) as refused:
            session.admit_audio(0.1)
        fake_models.gate.set()
        await session.finish()
        session.admit_audio(0.1)  # the transcripts have come: audio is taken again
        await session.close()
        return refused.value

    refused = run(go())
    assert (refused.code, refused.input, refused.retry_after_s) == ("transcription_backlog_full", "audio", 1.0)
    assert "3 s of audio behind" in refused.message


def test_one_append_longer_than_the_pace_allows_is_refused(fake_models):
    async def go():
        session = LiveSession(live_transcriber(fake_models, audio_burst_s=5.0), LiveConfig(), lambda e: None)
        session.admit_audio(5.0)
        with pytest.raises(TooLargeError) as refused:
            session.admit_audio(5.5)
        await session.close()
        return refused.value

    refused = run(go())
    assert refused.code == "input_audio_append_too_large" and refused.input == "audio"
    assert "at most 5 s of audio" in refused.message


def test_the_session_counts_the_audio_it_was_sent(fake_models):
    async def go():
        session = LiveSession(live_transcriber(fake_models), LiveConfig(), lambda e: None)
        await stream(session, tone(1.25))
        await session.close()
        return session.audio_seconds

    assert run(go()) == 1.25


def test_a_session_prepares_its_configuration_once_not_per_decode(fake_models, monkeypatch):
    """The prompt and the rest of a session's options go through the one preparation when the session starts and
    when it is updated; its partial and final decodes reuse what was prepared."""
    import pipeline.live.transcriber as transcriber_module

    prepared = []
    prepare = transcriber_module.prepare
    monkeypatch.setattr(transcriber_module, "prepare", lambda *a: prepared.append(a[-1]) or prepare(*a))

    async def go():
        events = []
        session = LiveSession(live_transcriber(fake_models), LiveConfig(prompt="foxes"), events.append)
        await stream(session, np.concatenate([silence(0.5), tone(2.0), silence(1.0)]))
        await session.finish()
        await session.close()
        return events

    events = run(go())
    assert sum(isinstance(e, TranscriptDelta) for e in events) >= 2  # several partial decodes, one final
    assert [options.initial_prompt for options in prepared] == ["foxes"]


def test_audio_faster_than_the_pace_is_refused_and_dropped_once_the_allowance_is_spent(fake_models):
    async def go():
        live = live_transcriber(fake_models, max_audio_speed=1.0, audio_burst_s=2.0)
        session = LiveSession(live, LiveConfig(turn_detection=None), lambda e: None)
        for _ in range(2):  # the allowance: two seconds ahead of real time
            session.admit_audio(1.0)
            session.append(silence(1.0))
        with pytest.raises(OverloadedError) as refused:
            session.admit_audio(1.0)
        await session.close()
        return refused.value, session.audio_seconds

    refused, taken = run(go())
    assert (refused.code, refused.input) == ("input_audio_too_fast", "audio") and taken == 2.0
    assert 0.9 < refused.retry_after_s <= 1.0 and "faster than 1 times real time" in refused.message


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
