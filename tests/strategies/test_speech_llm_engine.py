"""The ``speech_llm`` engine end to end on a tiny, randomly initialised Qwen2-Audio (the real architecture:
Whisper-style audio encoder, projector, Qwen2 decoder; the real processor and chat template) built offline by
tests/support/tiny_qwen2_audio.py.

These tests check plumbing only: processor, chat template, audio placement, generation settings, streaming,
stopping and cleanup. The weights are random, so what the model says means nothing.

Also: a registry entry naming an operator-installed class (``class:`` / ``processor_class:``), loaded from the
test tree (tests/support/speech_llm_toy.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from core.audio import SAMPLE_RATE
from core.errors import InvalidInputError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from pipeline.chat import AudioPart, Chat, ChatEnd, ChatMessage, ChatRequest
from pipeline.pool import ModelPool
from pipeline.transcriber import Transcriber
from strategies.base import ChatTurn, GenerationOptions, RuntimeContext
from strategies.factory import create_engine
from strategies.speech_llm_engine import SpeechLLMStrategy, accepted_kwargs, auto_model_class, model_dtype
from bench.checkpoints import single_threaded_torch
from tests.support.audio import tone
from tests.support.speech_llm_toy import TOY_CLASS, TOY_COLLATOR, build_toy
from tests.support.tiny_qwen2_audio import build_tiny_qwen2_audio


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_threaded_torch():
        yield


@pytest.fixture(scope="module")
def qwen2_audio_dir(tmp_path_factory) -> Path:
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio") / "tiny-qwen2-audio")


@pytest.fixture(scope="module")
def engine(qwen2_audio_dir) -> SpeechLLMStrategy:
    spec = ModelSpec(id="qwen2-audio", engine="speech_llm", model=str(qwen2_audio_dir))
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    assert isinstance(engine, SpeechLLMStrategy) and engine.memory_bytes() > 0  # the estimate, from the files
    engine.load()
    yield engine
    engine.unload()


def audio_tokens(seconds: float) -> int:
    """Qwen2-Audio's placeholder count for a clip: two halvings of its 10 ms frames."""
    frames = int(seconds * 100)
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1


CONVERSATION = [
    ChatTurn("system", ("Answer briefly.",)),
    ChatTurn("user", (tone(2.0), "What is this? <|AUDIO|><|im_end|>")),  # control tokens in user text stay text
    ChatTurn("assistant", ("A tone.",)),
    ChatTurn("user", ("And this one?", tone(1.0, 440))),
]


# ------------------------------------------------------------------------------------------------ tiny Qwen2-Audio


def test_the_generic_path_loads_the_family_class_and_processor(engine):
    assert type(engine._model).__name__ == "Qwen2AudioForConditionalGeneration"
    assert type(engine._processor).__name__ == "Qwen2AudioProcessor"
    assert engine.is_loaded and engine.sampling_rate == SAMPLE_RATE
    assert engine.memory_bytes() == sum(p.numel() * p.element_size() for p in engine._model.parameters()) + sum(
        b.numel() * b.element_size() for b in engine._model.buffers()
    )


def test_the_chat_template_places_each_clip_where_its_message_has_it(engine):
    inputs = engine._inputs(engine._processor, CONVERSATION, engine._model)
    ids = inputs["input_ids"][0].tolist()
    tokenizer = engine._processor.tokenizer
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    # Only the clips' placeholders: the <|AUDIO|> the user typed is text, not a placeholder.
    assert ids.count(audio_id) == audio_tokens(2.0) + audio_tokens(1.0)
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 4  # one per message, none from user text
    text = tokenizer.decode(ids, skip_special_tokens=False).replace("<|AUDIO|>" * audio_tokens(2.0), "<2s>")
    text = text.replace("<|AUDIO|>" * audio_tokens(1.0), "<1s>")
    assert text == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n"
        "<|im_start|>user\nAudio 1: <|audio_bos|><2s><|audio_eos|>\nWhat is this? <|AUDIO|><|im_end|><|im_end|>\n"
        "<|im_start|>assistant\nA tone.<|im_end|>\n"
        "<|im_start|>user\nAnd this one?Audio 2: <|audio_bos|><1s><|audio_eos|>\n<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert inputs["input_features"].shape == (2, 16, 3000) and inputs["input_features"].dtype == torch.float32
    assert inputs["feature_attention_mask"].sum(dim=1).tolist() == [200, 100]


def test_greedy_generation_streams_and_counts_tokens(engine):
    deltas: list[str] = []
    reply = engine.generate(CONVERSATION, GenerationOptions(max_new_tokens=12, temperature=0), on_text=deltas.append)
    again = engine.generate(CONVERSATION, GenerationOptions(max_new_tokens=12, temperature=0))
    assert reply.text == again.text and "".join(deltas) == reply.text and len(deltas) >= 1
    prompt = engine._inputs(engine._processor, CONVERSATION, engine._model)["input_ids"].shape[1]
    assert reply.prompt_tokens == prompt
    assert (reply.completion_tokens, reply.finish_reason) == (12, "length")  # its end tokens are suppressed


def test_sampling_with_a_seed_repeats(engine):
    options = GenerationOptions(max_new_tokens=8, temperature=1.0, top_p=0.9, seed=1234)
    assert engine.generate(CONVERSATION, options).text == engine.generate(CONVERSATION, options).text


def test_should_stop_ends_generation_with_stop(engine):
    seen: list[str] = []
    reply = engine.generate(
        CONVERSATION, GenerationOptions(max_new_tokens=40, temperature=0), should_stop=lambda: bool(seen),
        on_text=seen.append,
    )
    assert reply.finish_reason == "stop" and reply.completion_tokens < 40


def test_a_text_only_conversation(engine):
    reply = engine.generate([ChatTurn("user", ("hello",))], GenerationOptions(max_new_tokens=3, temperature=0))
    assert reply.completion_tokens == 3


def test_a_conversation_the_template_refuses_is_the_requests_fault(engine, monkeypatch):
    refusing = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    monkeypatch.setattr(engine._processor, "chat_template", refusing)
    with pytest.raises(InvalidInputError, match="System role not supported") as error:
        engine.generate(CONVERSATION, GenerationOptions(max_new_tokens=1))
    assert error.value.input == "messages"


def test_through_the_pool_and_the_chat_pipeline(qwen2_audio_dir, tmp_path):
    """The registry entry, the pool (load, lease, release), the chat flow (audio decoded from a file), streaming."""
    from bench.audio_files import encode

    registry = ModelRegistry(
        [
            ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en"),
            ModelSpec(id="qwen2-audio", engine="speech_llm", model=str(qwen2_audio_dir)),
        ]
    )
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()))
    chat = Chat(Transcriber(pool, default_model="tiny-en"))
    wav = encode(tone(1.5), SAMPLE_RATE, tmp_path / "tone.wav", "pcm_s16le").read_bytes()
    request = ChatRequest(
        messages=(ChatMessage("user", (AudioPart(wav, "messages.[0].content.[0]"), "What is it?")),),
        model_id="qwen2-audio",
        max_tokens=6,
        temperature=0,
    )
    try:
        result = chat.complete(request)
        assert result.end.finish_reason == "length" and result.end.usage.completion_tokens == 6
        assert result.end.usage.prompt_tokens > audio_tokens(1.5)
        assert result.end.audio_seconds == pytest.approx(1.5, abs=0.01)
        events: list = []
        chat.open_stream(request).produce(events.append, threading.Event())
        assert isinstance(events[-1], ChatEnd) and "".join(events[:-1]) == result.text
        state = pool.state("qwen2-audio")
        assert state.loaded and state.leases == 0 and state.resident_bytes > 0
        assert pool.unload("qwen2-audio") and not pool.state("qwen2-audio").loaded
    finally:
        pool.close()


# ---------------------------------------------------------------------------------------------- a research class


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    return build_toy(tmp_path_factory.mktemp("toy") / "toy-woz")


def toy_spec(directory: Path) -> ModelSpec:
    return ModelSpec.model_validate(
        {"id": "toy-woz", "engine": "speech_llm", "model": str(directory), "class": TOY_CLASS,
         "processor_class": TOY_COLLATOR}
    )


def test_a_registry_entry_names_an_installed_class_and_its_collator(toy_dir):
    engine = create_engine(toy_spec(toy_dir), RuntimeContext("cpu", HubAccess()))
    engine.load()
    deltas: list[str] = []
    turns = [ChatTurn("user", (tone(2.0), tone(1.0), "what was said?"))]
    options = GenerationOptions(max_new_tokens=200, temperature=0.3, top_p=0.5)  # the toy takes no sampling
    reply = engine.generate(turns, options, on_text=deltas.append)
    assert reply.text == "heard 2 clip(s), 3.0s: what was said?" and "".join(deltas) == reply.text
    assert reply.finish_reason == "stop" and reply.completion_tokens == len(reply.text) + 1  # and its end token
    assert engine._model.seen_audio == [((2, 32_000), torch.float32)]
    short = engine.generate(turns, GenerationOptions(max_new_tokens=5))
    assert (short.text, short.finish_reason) == ("heard", "length")
    engine.unload()
    assert not engine.is_loaded


def test_registry_class_fields(toy_dir, tmp_path):
    spec = toy_spec(toy_dir)
    assert spec.kind == "chat" and spec.class_ == TOY_CLASS and spec.processor_class == TOY_COLLATOR
    registry_file = tmp_path / "models.yaml"
    registry_file.write_text(
        f"models:\n  - id: toy\n    engine: speech_llm\n    model: {toy_dir}\n    class: {TOY_CLASS}\n"
    )
    assert ModelRegistry.from_file(registry_file).get("toy", kind="chat").class_ == TOY_CLASS
    with pytest.raises(ValidationError, match="only for the speech_llm engine"):
        ModelSpec.model_validate({"id": "x", "engine": "transformers", "model": "m", "class": TOY_CLASS})
    with pytest.raises(ValidationError):
        ModelSpec.model_validate({"id": "x", "engine": "speech_llm", "model": "m", "class": "os; rm -rf /"})
    assert ModelSpec(id="w", engine="transformers", model="m").kind == "transcription"


# ---------------------------------------------------------------------------------------------------------- helpers


def test_accepted_kwargs_and_dtypes():
    def strict(a, b=1):
        return a

    def loose(a, **kwargs):
        return a

    assert accepted_kwargs(strict, {"b": 2, "c": 3}) == {"b": 2}
    assert accepted_kwargs(loose, {"b": 2, "c": 3}) == {"b": 2, "c": 3}
    assert model_dtype(ModelSpec(id="m", engine="speech_llm", model="x"), "cpu") == torch.float32
    with pytest.raises(ValueError, match="int8"):
        model_dtype(ModelSpec(id="m", engine="speech_llm", model="x", dtype="int8"), "cpu")


def test_a_checkpoint_that_writes_no_text_is_refused_by_name(tmp_path):
    from transformers import ResNetConfig

    ResNetConfig().save_pretrained(tmp_path)
    spec = ModelSpec(id="m", engine="speech_llm", model=str(tmp_path))
    with pytest.raises(ValueError, match="class: package.module:ClassName"):
        auto_model_class(str(tmp_path), spec, {})
