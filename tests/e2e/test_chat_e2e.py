"""``/v1/chat/completions`` against a real ``bentoml serve`` with the official ``openai`` SDK: ``whisper-1``
(the default model, tiny.en) answers with the JFK transcript from wav and mp3, streamed too, with usage; typed
errors; and two ``speech_llm`` entries built here: a tiny random Qwen2-Audio and a research class from the test
tree. The speech-LLM checks are plumbing only: their weights are random or a toy."""

from __future__ import annotations

import base64
from pathlib import Path

import openai
import pytest
import yaml

from bench.audio_files import encode
from bench.corpus import normalize
from bench.server import ROOT, running_server
from core.audio import SAMPLE_RATE, decode_audio
from bench.checkpoints import single_threaded_torch
from tests.support.audio import JFK_PHRASE
from tests.support.speech_llm_toy import TOY_CLASS, TOY_COLLATOR, build_toy
from tests.support.tiny_qwen2_audio import build_tiny_qwen2_audio

JFK_SECONDS = 11.0


@pytest.fixture(scope="module")
def jfk_files(jfk_path: Path, tmp_path_factory) -> dict[str, str]:
    """The JFK excerpt (44.1 kHz stereo FLAC in the corpus) as 16 kHz mono WAV and MP3, base64-encoded."""
    if not jfk_path.is_file():
        pytest.skip(f"the JFK excerpt is not in the corpus ({jfk_path})")
    audio = decode_audio(jfk_path)
    directory = tmp_path_factory.mktemp("jfk")
    wav = encode(audio, SAMPLE_RATE, directory / "jfk.wav", "pcm_s16le")
    mp3 = encode(audio, SAMPLE_RATE, directory / "jfk.mp3", "libmp3lame")
    return {name: base64.b64encode(path.read_bytes()).decode() for name, path in (("wav", wav), ("mp3", mp3))}


@pytest.fixture(scope="module")
def chat_server(corpus_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-models")
    with single_threaded_torch():
        qwen2_audio = build_tiny_qwen2_audio(root / "tiny-qwen2-audio")
    toy = build_toy(root / "toy-woz")
    registry = yaml.safe_load((ROOT / "models.yaml").read_text())
    registry["models"] += [
        {"id": "tiny-qwen2-audio", "engine": "speech_llm", "model": str(qwen2_audio), "preload": True},
        {"id": "toy-woz", "engine": "speech_llm", "model": str(toy), "class": TOY_CLASS,
         "processor_class": TOY_COLLATOR},
    ]
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump(registry))
    with running_server({"STT_REGISTRY_PATH": str(path)}) as running:
        yield running


@pytest.fixture(scope="module")
def target_server(chat_server):
    return chat_server


def audio_message(data: str, fmt: str = "wav", text: str | None = None) -> dict:
    content: list[dict] = [{"type": "input_audio", "input_audio": {"data": data, "format": fmt}}]
    if text is not None:
        content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_whisper_1_answers_with_the_jfk_transcript(sdk, jfk_files, fmt):
    completion = sdk.chat.completions.create(model="whisper-1", messages=[audio_message(jfk_files[fmt], fmt)])
    assert completion.object == "chat.completion" and completion.model == "tiny-en"
    assert JFK_PHRASE in normalize(completion.choices[0].message.content)
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens > 10
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_whisper_1_streams_the_transcript_with_usage(sdk, jfk_files):
    stream = sdk.chat.completions.create(
        model="whisper-1",
        messages=[audio_message(jfk_files["wav"])],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert JFK_PHRASE in normalize(text)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 10


def test_typed_errors(sdk, jfk_files):
    with pytest.raises(openai.BadRequestError) as several:
        sdk.chat.completions.create(model="whisper-1", messages=[audio_message(jfk_files["wav"])], n=2)
    assert several.value.param == "n"
    with pytest.raises(openai.BadRequestError) as no_audio:
        sdk.chat.completions.create(model="whisper-1", messages=[{"role": "user", "content": "hello"}])
    assert no_audio.value.param == "messages" and no_audio.value.code == "missing_audio"
    with pytest.raises(openai.BadRequestError) as not_base64:
        sdk.chat.completions.create(model="whisper-1", messages=[audio_message("%%%")])
    assert not_base64.value.param == "messages.[0].content.[0].input_audio.data"
    with pytest.raises(openai.BadRequestError) as not_audio:  # OpenAI's status for audio it cannot read
        sdk.chat.completions.create(model="whisper-1", messages=[audio_message(base64.b64encode(b"x" * 500).decode())])
    assert not_audio.value.status_code == 400 and not_audio.value.param == "messages.[0].content.[0]"
    assert not_audio.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="no-such-model", messages=[audio_message(jfk_files["wav"])])
    with pytest.raises(openai.BadRequestError) as remote:
        sdk.chat.completions.create(
            model="whisper-1",
            messages=[{"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "http://127.0.0.1/a"}}]}],
        )
    assert remote.value.code == "remote_url_not_allowed"


def test_a_speech_llm_answers_through_its_chat_template(sdk, jfk_files):
    """Plumbing only: a tiny random Qwen2-Audio writes meaningless text, max_tokens of it."""
    messages = [
        {"role": "system", "content": "Answer briefly."},
        audio_message(jfk_files["mp3"], "mp3", "What was said?"),
    ]
    completion = sdk.chat.completions.create(
        model="tiny-qwen2-audio", messages=messages, max_tokens=5, temperature=0
    )
    assert completion.model == "tiny-qwen2-audio" and completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5 and completion.usage.prompt_tokens > 250  # 11 s of audio tokens
    stream = sdk.chat.completions.create(
        model="tiny-qwen2-audio", messages=messages, max_tokens=5, temperature=0, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == completion.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "length"


def test_a_research_class_from_the_registry(sdk, jfk_files):
    completion = sdk.chat.completions.create(
        model="toy-woz", messages=[audio_message(jfk_files["wav"], text="what was said?")]
    )
    assert completion.choices[0].message.content == f"heard 1 clip(s), {JFK_SECONDS:.1f}s: what was said?"


def test_chat_models_are_listed(sdk):
    kinds = {m.id: m.model_extra.get("kind") for m in sdk.models.list()}
    assert kinds["tiny-qwen2-audio"] == kinds["toy-woz"] == "chat" and kinds["tiny-en"] == "transcription"
