"""The chat flow on stand-in engines: which model answers, what it is given (roles, text, decoded audio in
place), stop strings, streaming, cancellation and the errors that name the message part at fault."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from bench.audio_files import encode
from core.audio import SAMPLE_RATE
from core.errors import InvalidInputError, ModelNotFoundError, RequestCancelled, TooLargeError, UnsupportedAudioError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from pipeline.chat import AudioPart, Chat, ChatEnd, ChatItem, ChatMessage, ChatRequest, ChatStream, StopScanner
from pipeline.pool import ModelPool
from pipeline.transcriber import Transcriber
from strategies.base import ChatReply, ChatStrategy, ChatTurn, GenerationOptions, RuntimeContext
from tests.fakes import FakeStrategy, fake_engine


class FakeChatEngine(ChatStrategy):
    """Answers, word by word, what it was given: each turn's role, seconds of audio and text."""

    instances: list[FakeChatEngine] = []
    fail_after_words: int | None = None
    gate: threading.Event | None = None

    def __init__(self, spec, runtime) -> None:
        super().__init__(spec, runtime)
        self._loaded = False
        self.calls: list[tuple[list[ChatTurn], GenerationOptions]] = []
        self.stopped_early = False
        FakeChatEngine.instances.append(self)

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False

    def memory_bytes(self) -> int:
        return 100

    @staticmethod
    def describe(turns: Sequence[ChatTurn]) -> list[str]:
        words = []
        for turn in turns:
            for part in turn.parts:
                heard = part if isinstance(part, str) else f"{len(part) / SAMPLE_RATE:.1f}s"
                words.append(f"{turn.role}:{heard}")
        return words

    def generate(
        self,
        turns: Sequence[ChatTurn],
        options: GenerationOptions,
        should_stop: Callable[[], bool] = lambda: False,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        self.calls.append((list(turns), options))
        words = self.describe(turns)[: options.max_new_tokens]
        written: list[str] = []
        for i, word in enumerate(words):
            if should_stop():
                self.stopped_early = True
                break
            if FakeChatEngine.fail_after_words is not None and i >= FakeChatEngine.fail_after_words:
                raise RuntimeError("the fake model broke")
            if FakeChatEngine.gate is not None and i == 1:
                assert FakeChatEngine.gate.wait(10)
            piece = word if i == 0 else " " + word
            written.append(piece)
            if on_text is not None:
                on_text(piece)
        complete = len(words) == len(self.describe(turns))
        reason = "stop" if complete or self.stopped_early else "length"
        return ChatReply("".join(written), reason, prompt_tokens=len(turns) * 10, completion_tokens=len(written))


def chat_factory(spec: ModelSpec, runtime):
    return FakeChatEngine(spec, runtime) if spec.kind == "chat" else fake_engine(spec, runtime)


def chat_registry() -> ModelRegistry:
    return ModelRegistry(
        [
            ModelSpec(id="asr", engine="transformers", model="x"),
            ModelSpec(id="speech-llm", engine="speech_llm", model="y"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="z"),
        ]
    )


def chat_transcriber(max_audio_duration_s: float | None = None) -> Transcriber:
    FakeStrategy.loads, FakeStrategy.fail_with, FakeStrategy.multilingual, FakeStrategy.gate = [], None, True, None
    FakeChatEngine.instances, FakeChatEngine.fail_after_words, FakeChatEngine.gate = [], None, None
    pool = ModelPool(chat_registry(), RuntimeContext("cpu", HubAccess()), factory=chat_factory)
    return Transcriber(pool, default_model="asr", max_audio_duration_s=max_audio_duration_s, diarizer_id="speakers")


def wav_bytes(tmp_path, seconds: float = 2.0, name: str = "tone.wav") -> bytes:
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE)
    return encode(tone.astype(np.float32), SAMPLE_RATE, tmp_path / name, "pcm_s16le").read_bytes()


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
def chat():
    return Chat(chat_transcriber())


def _engine(chat: Chat) -> FakeChatEngine:
    (engine,) = FakeChatEngine.instances
    return engine


# ------------------------------------------------------------------------------------------- transcription models


def test_a_transcription_model_answers_with_the_transcript_of_the_last_user_message(chat, tmp_path):
    two, three = wav_bytes(tmp_path, 2.0, "a.wav"), wav_bytes(tmp_path, 3.0, "b.wav")
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


def test_the_default_model_answers_when_the_request_names_none(chat, tmp_path):
    message = ChatMessage("user", (audio_part(wav_bytes(tmp_path)),))
    assert chat.complete(request(message, model=None)).model_id == "asr"


def test_a_transcription_model_needs_audio_in_the_last_user_message(chat, tmp_path):
    earlier = ChatMessage("user", (audio_part(wav_bytes(tmp_path)),))
    with pytest.raises(InvalidInputError) as error:
        chat.complete(request(earlier, ChatMessage("assistant", ("ok",)), ChatMessage("user", ("and now?",))))
    assert error.value.input == "messages" and error.value.code == "missing_audio"
    with pytest.raises(InvalidInputError):
        chat.open_stream(request(ChatMessage("system", ("hi",))))


def test_a_transcription_model_refuses_temperatures_above_one(chat, tmp_path):
    message = ChatMessage("user", (audio_part(wav_bytes(tmp_path)),))
    with pytest.raises(InvalidInputError) as error:
        chat.complete(request(message, temperature=1.5))
    assert error.value.input == "temperature"


def test_undecodable_audio_names_the_message_part(chat, tmp_path):
    good = audio_part(wav_bytes(tmp_path), 0, 0)
    bad = AudioPart(b"this is not audio at all" * 10, "messages.[0].content.[1]")
    for model in ("asr", "speech-llm"):
        with pytest.raises(UnsupportedAudioError) as error:
            chat.complete(request(ChatMessage("user", (good, bad)), model=model))
        assert error.value.input == "messages.[0].content.[1]" and "uploaded file" not in error.value.message


def test_audio_over_the_duration_limit_names_the_part(tmp_path):
    chat = Chat(chat_transcriber(max_audio_duration_s=1.0))
    for model in ("asr", "speech-llm"):
        with pytest.raises(TooLargeError) as error:
            chat.complete(request(ChatMessage("user", (audio_part(wav_bytes(tmp_path), 0, 0),)), model=model))
        assert error.value.input == "messages.[0].content.[0]" and error.value.code == "audio_too_long"


def test_models_that_cannot_chat_are_refused(chat):
    with pytest.raises(InvalidInputError) as error:
        chat.resolve("speakers")
    assert error.value.input == "model" and "asr, speech-llm" in error.value.message
    with pytest.raises(ModelNotFoundError):
        chat.resolve("nope")


def test_transcript_stream_gives_the_same_text_then_the_end(chat, tmp_path):
    two, one = wav_bytes(tmp_path, 2.0, "a.wav"), wav_bytes(tmp_path, 1.0, "b.wav")
    message = ChatMessage("user", (audio_part(two), audio_part(one, 0, 1)))
    events = produced(chat.open_stream(request(message)))
    assert isinstance(events[-1], ChatEnd) and all(isinstance(e, str) for e in events[:-1])
    assert "".join(events[:-1]) == chat.complete(request(message)).text == "asr heard 2.0s asr heard 1.0s"
    assert events[-1].audio_seconds == pytest.approx(3.0, abs=0.02)


def test_stop_strings_cut_transcripts_too(chat, tmp_path):
    message = ChatMessage("user", (audio_part(wav_bytes(tmp_path)),))
    assert chat.complete(request(message, stop=(" 2.0",))).text == "asr heard"
    events = produced(chat.open_stream(request(message, stop=("heard",))))
    assert "".join(e for e in events if isinstance(e, str)) == "asr "


# ---------------------------------------------------------------------------------------------------- chat models


def test_a_chat_model_gets_the_whole_conversation_with_audio_in_place(chat, tmp_path):
    result = chat.complete(
        request(
            ChatMessage("system", ("Be brief.",)),
            ChatMessage("user", (audio_part(wav_bytes(tmp_path, 2.0, "a.wav"), 1, 0), "What is this?")),
            ChatMessage("assistant", ("A tone.",)),
            ChatMessage("user", ("And this?", audio_part(wav_bytes(tmp_path, 1.0, "b.wav"), 3, 1))),
            model="speech-llm",
            temperature=0.7,
            top_p=0.9,
            seed=3,
            max_tokens=50,
        )
    )
    turns, options = _engine(chat).calls[0]
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


def test_a_stop_string_ends_the_answer_and_stops_the_model(chat):
    message = ChatMessage("user", ("one", "two", "three", "four"))
    result = chat.complete(request(message, model="speech-llm", stop=("user:th",)))
    assert result.text == "user:one user:two " and result.end.finish_reason == "stop"
    assert _engine(chat).stopped_early


def test_the_stream_gives_the_answer_as_it_is_written(chat, tmp_path):
    message = ChatMessage("user", ("one", audio_part(wav_bytes(tmp_path), 0, 1)))
    events = produced(chat.open_stream(request(message, model="speech-llm")))
    assert events[:-1] == ["user:one", " user:2.0s"]
    end = events[-1]
    assert isinstance(end, ChatEnd) and end.finish_reason == "stop" and end.usage.completion_tokens == 2
    assert chat.pool.state("speech-llm").leases == 0


def test_a_stream_closed_early_stops_the_model(chat):
    FakeChatEngine.gate = threading.Event()
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
    FakeChatEngine.gate.set()
    worker.join(10)
    assert [type(error) for error in outcome] == [RequestCancelled]
    engine = _engine(chat)
    for _ in range(100):
        if chat.pool.state("speech-llm").leases == 0:
            break
        threading.Event().wait(0.05)
    assert engine.stopped_early and chat.pool.state("speech-llm").leases == 0


def test_a_model_error_in_a_stream_reaches_the_reader(chat):
    FakeChatEngine.fail_after_words = 1
    stream = chat.open_stream(request(ChatMessage("user", ("a", "b")), model="speech-llm"))
    items: list[ChatItem] = []
    with pytest.raises(RuntimeError, match="broke"):
        stream.produce(items.append, threading.Event())
    assert items == ["user:a"]


def test_a_cancelled_request_stops_the_model_and_fails(chat):
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(RequestCancelled):
        chat.complete(request(ChatMessage("user", ("a", "b")), model="speech-llm"), cancelled)
    assert _engine(chat).stopped_early


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


def test_audio_alone_reaches_a_chat_model(chat, tmp_path):
    data = wav_bytes(tmp_path)
    assert chat.complete(request(ChatMessage("user", (audio_part(data),)), model="speech-llm")).text == "user:2.0s"


def test_a_chat_models_audio_is_decoded_in_the_uploads_decode_slots(tmp_path):
    """One limit on concurrent decoding for the whole service: chat parts take the transcriber's slots."""
    transcriber = chat_transcriber()
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
            ChatMessage("user", ("Hi", audio_part(wav_bytes(tmp_path, 1.0)))), model="speech-llm")), finished.set()))
        worker.start()
        assert not finished.wait(0.5)
    finally:
        for _ in range(slots._initial_value):
            slots.release()
    worker.join(30)
    assert finished.is_set() and taken == [True]
