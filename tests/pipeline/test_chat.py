"""The chat flow on stand-in engines: which model answers, what it is given (roles, text, decoded audio in
place), stop strings, streaming, cancellation and the errors that name the message part at fault."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from core.audio_memory import AudioMemoryBudget
from core.errors import (
    InvalidInputError,
    ModelNotFoundError,
    OverloadedError,
    RequestCancelled,
    TooLargeError,
    UnsupportedAudioError,
)
from pipeline.chat import (
    AudioPart, Chat, ChatEnd, ChatItem, ChatLimits, ChatMessage, ChatRequest, ChatStream, StopScanner,
)
from strategies.base import GenerationOptions
from tests.fakes import FakeChatEngine, FakeModels
from tests.support.transcribers import chat_transcriber


def audio_part(data: bytes, message: int = 0, part: int = 0) -> AudioPart:
    return AudioPart(data, f"messages.[{message}].content.[{part}]")


def request(*messages: ChatMessage, model: str | None = None, **kwargs) -> ChatRequest:
    return ChatRequest(messages=tuple(messages), model_id=model, max_tokens=kwargs.pop("max_tokens", 64), **kwargs)


def produced(stream: ChatStream) -> list[ChatItem]:
    """The stream's items, produced on this thread by a reader that stays to the end."""
    items: list[ChatItem] = []
    stream.produce(items.append, threading.Event())
    return items


@pytest.fixture
def chat(fake_models: FakeModels) -> Chat:
    return Chat(chat_transcriber(fake_models))


def _engine(fake_models: FakeModels) -> FakeChatEngine:
    (engine,) = fake_models.chat_engines
    return engine


# ------------------------------------------------------------------------------------------- transcription models


def test_a_transcription_model_answers_with_the_transcript_of_the_last_user_message(chat, wav_bytes):
    two, three = wav_bytes(2.0), wav_bytes(3.0)
    result = chat.complete(
        request(
            ChatMessage("system", ("Be brief.",)),
            ChatMessage("user", (audio_part(three),)),
            ChatMessage("assistant", ("earlier answer",)),
            ChatMessage("user", ("Names: Kennedy.", audio_part(two, 3, 1), audio_part(three, 3, 2))),
        )
    )
    assert result.model_id == "asr"
    assert result.text == "asr heard 2.0s asr heard 3.0s"
    assert result.end.finish_reason == "stop" and result.end.audio_seconds == pytest.approx(5.0, abs=0.02)
    assert result.end.usage.prompt_tokens == 0 and result.end.usage.completion_tokens == 6  # words, no token counts
    with chat.pool.use(chat.registry.get("asr")) as lease:
        calls = lease.engine.calls
    assert [c.initial_prompt for c in calls] == ["Names: Kennedy."] * 2


def test_the_default_model_answers_when_the_request_names_none(chat, wav_bytes):
    message = ChatMessage("user", (audio_part(wav_bytes()),))
    assert chat.complete(request(message, model=None)).model_id == "asr"


def test_a_transcription_model_needs_audio_in_the_last_user_message(chat, wav_bytes):
    earlier = ChatMessage("user", (audio_part(wav_bytes()),))
    with pytest.raises(InvalidInputError) as error:
        chat.complete(request(earlier, ChatMessage("assistant", ("ok",)), ChatMessage("user", ("and now?",))))
    assert error.value.input == "messages" and error.value.code == "missing_audio"
    with pytest.raises(InvalidInputError):
        chat.open_stream(request(ChatMessage("system", ("hi",))))


def test_a_transcription_model_refuses_temperatures_above_one(chat, wav_bytes):
    message = ChatMessage("user", (audio_part(wav_bytes()),))
    with pytest.raises(InvalidInputError) as error:
        chat.complete(request(message, temperature=1.5))
    assert error.value.input == "temperature"


def test_undecodable_audio_names_the_message_part(chat, wav_bytes):
    good = audio_part(wav_bytes(), 0, 0)
    bad = AudioPart(b"this is not audio at all" * 10, "messages.[0].content.[1]")
    for model in ("asr", "speech-llm"):
        with pytest.raises(UnsupportedAudioError) as error:
            chat.complete(request(ChatMessage("user", (good, bad)), model=model))
        assert error.value.input == "messages.[0].content.[1]" and "uploaded file" not in error.value.message


def test_audio_over_the_duration_limit_names_the_part(fake_models, wav_bytes):
    chat = Chat(chat_transcriber(fake_models, max_audio_duration_s=1.0))
    for model in ("asr", "speech-llm"):
        with pytest.raises(TooLargeError) as error:
            chat.complete(request(ChatMessage("user", (audio_part(wav_bytes(), 0, 0),)), model=model))
        assert error.value.input == "messages.[0].content.[0]" and error.value.code == "audio_too_long"


def test_audio_parts_are_held_in_the_audio_budget_until_the_answer_is_written(fake_models, wav_bytes):
    budget = AudioMemoryBudget(2**20)
    chat = Chat(chat_transcriber(fake_models, audio_budget=budget))
    parts = (audio_part(wav_bytes(2.0), 0, 0), audio_part(wav_bytes(1.0), 0, 1))
    fake_models.chat_gate = threading.Event()  # the model stops after its first word
    answering = threading.Thread(target=chat.complete, args=(request(ChatMessage("user", parts), model="speech-llm"),))
    answering.start()
    deadline = time.monotonic() + 10
    while not fake_models.chat_engines or not _engine(fake_models).calls:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert budget.held_bytes == 3 * 16_000 * 4
    fake_models.chat_gate.set()
    answering.join(10)
    _engine(fake_models).calls.clear()  # the fake's record of what it was given holds the audio too
    assert budget.held_bytes == 0
    assert chat.complete(request(ChatMessage("user", parts))).text == "asr heard 2.0s asr heard 1.0s"
    assert budget.held_bytes == 0


def test_a_part_the_audio_budget_cannot_hold_names_the_part(fake_models, wav_bytes):
    budget = AudioMemoryBudget(2**20, wait_s=0.05)
    chat = Chat(chat_transcriber(fake_models, audio_budget=budget))
    long = ChatMessage("user", (audio_part(wav_bytes(1.0), 0, 0), audio_part(wav_bytes(20.0), 0, 1)))
    for model in ("asr", "speech-llm"):
        with pytest.raises(TooLargeError) as error:
            chat.complete(request(long, model=model))
        assert error.value.input == "messages.[0].content.[1]" and error.value.code == "audio_over_memory_budget"
    del error  # its traceback held the first part's audio, in a reference cycle: the budget collects it when full
    holder = budget.reserve(2**20 - 50_000)
    with pytest.raises(OverloadedError) as busy:
        chat.complete(request(ChatMessage("user", (audio_part(wav_bytes(1.0), 0, 0),)), model="speech-llm"))
    assert busy.value.input == "messages.[0].content.[0]" and busy.value.retry_after_s
    holder.release()
    assert budget.held_bytes == 0


def test_models_that_cannot_chat_are_refused(chat):
    with pytest.raises(InvalidInputError) as error:
        chat.resolve("speakers")
    assert error.value.input == "model" and "asr, speech-llm" in error.value.message
    with pytest.raises(ModelNotFoundError):
        chat.resolve("nope")


def test_transcript_stream_gives_the_same_text_then_the_end(chat, wav_bytes):
    two, one = wav_bytes(2.0), wav_bytes(1.0)
    message = ChatMessage("user", (audio_part(two), audio_part(one, 0, 1)))
    events = produced(chat.open_stream(request(message)))
    assert isinstance(events[-1], ChatEnd) and all(isinstance(e, str) for e in events[:-1])
    assert "".join(events[:-1]) == chat.complete(request(message)).text == "asr heard 2.0s asr heard 1.0s"
    assert events[-1].audio_seconds == pytest.approx(3.0, abs=0.02)


def test_stop_strings_cut_transcripts_too(chat, wav_bytes):
    message = ChatMessage("user", (audio_part(wav_bytes()),))
    assert chat.complete(request(message, stop=(" 2.0",))).text == "asr heard"
    events = produced(chat.open_stream(request(message, stop=("heard",))))
    assert "".join(e for e in events if isinstance(e, str)) == "asr "


# ---------------------------------------------------------------------------------------------------- chat models


def test_a_chat_model_gets_the_whole_conversation_with_audio_in_place(chat, fake_models, wav_bytes):
    result = chat.complete(
        request(
            ChatMessage("system", ("Be brief.",)),
            ChatMessage("user", (audio_part(wav_bytes(2.0), 1, 0), "What is this?")),
            ChatMessage("assistant", ("A tone.",)),
            ChatMessage("user", ("And this?", audio_part(wav_bytes(1.0), 3, 1))),
            model="speech-llm",
            temperature=0.7,
            top_p=0.9,
            seed=3,
            max_tokens=50,
        )
    )
    turns, options = _engine(fake_models).calls[0]
    assert [t.role for t in turns] == ["system", "user", "assistant", "user"]
    audio = turns[1].parts[0]
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and len(audio) == pytest.approx(32_000, abs=50)
    assert result.text == "system:Be brief. user:2.0s user:What is this? assistant:A tone. user:And this? user:1.0s"
    assert options == GenerationOptions(max_new_tokens=50, temperature=0.7, top_p=0.9, seed=3)
    assert result.end.finish_reason == "stop" and result.end.usage.prompt_tokens == 40
    assert result.end.usage.completion_tokens == 6 and result.end.usage.total_tokens == 46
    assert result.end.audio_seconds == pytest.approx(3.0, abs=0.02)
    assert chat.pool.state("speech-llm").leases == 0


def test_a_chat_model_answers_text_alone(chat):
    result = chat.complete(request(ChatMessage("user", ("hello",)), model="speech-llm"))
    assert result.text == "user:hello" and result.end.audio_seconds == 0


def test_the_token_limit_ends_with_length(chat):
    result = chat.complete(request(ChatMessage("user", ("a", "b", "c")), model="speech-llm", max_tokens=2))
    assert result.text == "user:a user:b" and result.end.finish_reason == "length"


def test_a_stop_string_ends_the_answer_and_stops_the_model(chat, fake_models):
    message = ChatMessage("user", ("one", "two", "three", "four"))
    result = chat.complete(request(message, model="speech-llm", stop=("user:th",)))
    assert result.text == "user:one user:two " and result.end.finish_reason == "stop"
    assert _engine(fake_models).stopped_early


def test_the_stream_gives_the_answer_as_it_is_written(chat, wav_bytes):
    message = ChatMessage("user", ("one", audio_part(wav_bytes(), 0, 1)))
    events = produced(chat.open_stream(request(message, model="speech-llm")))
    assert events[:-1] == ["user:one", " user:2.0s"]
    end = events[-1]
    assert isinstance(end, ChatEnd) and end.finish_reason == "stop" and end.usage.completion_tokens == 2
    assert chat.pool.state("speech-llm").leases == 0


def test_a_stream_closed_early_stops_the_model(chat, fake_models):
    fake_models.chat_gate = threading.Event()
    stream = chat.open_stream(request(ChatMessage("user", ("a", "b", "c")), model="speech-llm"))
    items: queue.Queue[ChatItem] = queue.Queue()
    stopped = threading.Event()
    outcome: list[BaseException] = []

    def produce() -> None:
        try:
            stream.produce(items.put, stopped)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=produce)  # as the server runs it: the reader is on another thread
    worker.start()
    assert items.get(timeout=10) == "user:a"
    stopped.set()  # the client has gone
    fake_models.chat_gate.set()
    worker.join(10)
    assert [type(error) for error in outcome] == [RequestCancelled]
    engine = _engine(fake_models)
    for _ in range(100):
        if chat.pool.state("speech-llm").leases == 0:
            break
        threading.Event().wait(0.05)
    assert engine.stopped_early and chat.pool.state("speech-llm").leases == 0


def test_a_model_error_in_a_stream_reaches_the_reader(chat, fake_models):
    fake_models.chat_fail_after_words = 1
    stream = chat.open_stream(request(ChatMessage("user", ("a", "b")), model="speech-llm"))
    items: list[ChatItem] = []
    with pytest.raises(RuntimeError, match="broke"):
        stream.produce(items.append, threading.Event())
    assert items == ["user:a"]


def test_a_cancelled_request_stops_the_model_and_fails(chat, fake_models):
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(RequestCancelled):
        chat.complete(request(ChatMessage("user", ("a", "b")), model="speech-llm"), cancelled)
    assert _engine(fake_models).stopped_early


# ---------------------------------------------------------------------------------------------------- stop strings


@pytest.mark.parametrize(
    ("pieces", "stops", "expected", "stopped"),
    [
        (["Hello wor", "ld. Bye"], ["world"], "Hello ", True),
        (["Hello", " END", "ING"], ["ENDING"], "Hello ", True),
        (["Hello E", "ND"], ["ENDING"], "Hello END", False),
        (["ab", "c"], ["x", "bc"], "a", True),
        (["no stop here"], [], "no stop here", False),
        (["tail ST"], ["STOP"], "tail ST", False),
    ],
)
def test_stop_scanner(pieces, stops, expected, stopped):
    scanner = StopScanner(stops)
    out = "".join(scanner.feed(p) for p in pieces) + scanner.flush()
    assert (out, scanner.stopped) == (expected, stopped)


def test_audio_alone_reaches_a_chat_model(chat, wav_bytes):
    data = wav_bytes()
    assert chat.complete(request(ChatMessage("user", (audio_part(data),)), model="speech-llm")).text == "user:2.0s"


def test_a_chat_models_audio_is_decoded_in_the_uploads_decode_slots(fake_models, wav_bytes):
    """One limit on concurrent decoding for the whole service: chat parts take the transcriber's slots."""
    transcriber = chat_transcriber(fake_models)
    chat = Chat(transcriber)
    slots = transcriber._decode_slots
    taken: list[bool] = []
    real_decode = transcriber.decode

    def watched(source):
        audio = real_decode(source)
        taken.append(True)
        return audio

    transcriber.decode = watched
    for _ in range(slots._initial_value):
        slots.acquire()  # every slot held by uploads: a chat part must wait for one
    try:
        finished = threading.Event()
        worker = threading.Thread(target=lambda: (chat.complete(request(
            ChatMessage("user", ("Hi", audio_part(wav_bytes(1.0)))), model="speech-llm")), finished.set()))
        worker.start()
        assert not finished.wait(0.5)
    finally:
        for _ in range(slots._initial_value):
            slots.release()
    worker.join(30)
    assert finished.is_set() and taken == [True]


# ------------------------------------------------------------------------------------------------ audio limits


def test_too_many_audio_parts_are_refused_before_any_is_decoded(fake_models, wav_bytes):
    chat = Chat(chat_transcriber(fake_models), ChatLimits(max_audio_parts=3))
    parts = tuple(audio_part(b"not audio at all", 0, i) for i in range(4))  # never decoded: no decoding error
    for model in ("asr", "speech-llm"):
        for call in (chat.complete, chat.open_stream):
            with pytest.raises(InvalidInputError) as error:
                call(request(ChatMessage("user", parts), model=model))
            assert error.value.input == "messages" and error.value.code == "too_many_audio_parts"
            assert "4 audio parts; at most 3" in error.value.message
    earlier = ChatMessage("user", parts[:2])  # every message's parts count, the history's too
    with pytest.raises(InvalidInputError, match="4 audio parts"):
        chat.complete(request(earlier, ChatMessage("user", parts[2:]), model="speech-llm"))
    assert fake_models.loads == [] and fake_models.chat_engines == []
    good = tuple(audio_part(wav_bytes(0.5), 0, i) for i in range(3))
    assert chat.complete(request(ChatMessage("user", good))).text == "asr heard 0.5s asr heard 0.5s asr heard 0.5s"


def test_audio_over_the_requests_total_is_refused_as_the_parts_decode(fake_models, wav_bytes):
    chat = Chat(chat_transcriber(fake_models), ChatLimits(max_audio_s=2.5))
    parts = tuple(audio_part(wav_bytes(1.0), 0, i) for i in range(3))
    undecodable = audio_part(b"not audio at all", 0, 3)  # after the limit is passed: never reached
    for model in ("asr", "speech-llm"):
        for call in (chat.complete, chat.open_stream):
            with pytest.raises(InvalidInputError) as error:
                call(request(ChatMessage("user", (*parts, undecodable)), model=model))
            assert error.value.input == "messages" and error.value.code == "audio_too_long"
            assert "3 seconds in all so far, over the limit of 2.5 seconds" in error.value.message
    assert chat.complete(request(ChatMessage("user", parts[:2]))).end.audio_seconds == pytest.approx(2.0, abs=0.02)


def test_by_default_a_requests_audio_is_limited_to_the_uploads_limit_in_all(fake_models, wav_bytes):
    chat = Chat(chat_transcriber(fake_models, max_audio_duration_s=2.5))
    assert chat.limits == ChatLimits(max_audio_parts=None, max_audio_s=2.5)
    parts = tuple(audio_part(wav_bytes(1.0), 0, i) for i in range(3))
    with pytest.raises(InvalidInputError, match="over the limit of 2.5 seconds"):
        chat.complete(request(ChatMessage("user", parts), model="speech-llm"))
