"""``POST /v1/chat/completions`` on stand-in engines, through the real ``/v1`` app and its error handlers: bodies
and stream chunks checked against the ``openai`` package's own types, and the official SDK's typed errors."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from pipeline.chat import Chat
from server.collaborators import ChatSettings, Collaborators, RouteSettings, bind
from tests.fakes import FakeModels
from tests.support.audio_origin import audio_origin
from tests.support.transcribers import chat_transcriber


@pytest.fixture
def collaborators(fake_models: FakeModels) -> Collaborators:
    transcriber = chat_transcriber(fake_models)
    settings = ChatSettings(max_audio_bytes=2**20, max_completion_tokens=100)
    return Collaborators(transcriber=transcriber, chat=Chat(transcriber), chat_settings=settings)


@pytest.fixture
def use_chat_settings(v1_app, collaborators):
    """Gives the chat route other settings for the rest of the test."""
    return lambda settings: bind(v1_app, replace(collaborators, chat_settings=settings))


@pytest.fixture
def wav64(wav_bytes) -> str:
    return base64.b64encode(wav_bytes()).decode()


def audio_message(data: str, text: str | None = None, fmt: str = "wav") -> dict:
    parts: list[dict] = [{"type": "input_audio", "input_audio": {"data": data, "format": fmt}}]
    if text is not None:
        parts.append({"type": "text", "text": text})
    return {"role": "user", "content": parts}


def post(http, **body):
    return http.post("/v1/chat/completions", json={"model": "whisper-1", **body})


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def sse_events(response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]


# ------------------------------------------------------------------------------------------------------- answers


def test_whisper_1_answers_with_the_transcript(sdk, wav64):
    completion = sdk.chat.completions.create(model="whisper-1", messages=[audio_message(wav64, "Kennedy")])
    assert isinstance(completion, ChatCompletion)
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "asr" and completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "asr heard 2.0s"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 3 and completion.usage.total_tokens == 3


def test_the_body_has_openais_shape(http, wav64):
    body = post(http, messages=[audio_message(wav64)]).json()
    ChatCompletion.model_validate(body)
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_a_chat_model_gets_system_history_and_audio(sdk, wav64, fake_models):
    completion = sdk.chat.completions.create(
        model="speech-llm",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": [
                {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{wav64}"}},
                {"type": "text", "text": "what?"},
            ]},
        ],
        max_completion_tokens=20,
        temperature=0.5,
        top_p=0.8,
        seed=1,
        stop=["never"],
    )
    assert completion.choices[0].message.content == (
        "system:Be brief. user:hi assistant:hello user:2.0s user:what?"
    )
    (engine,) = fake_models.chat_engines
    _, options = engine.calls[0]
    assert (options.max_new_tokens, options.temperature, options.top_p, options.seed) == (20, 0.5, 0.8, 1)
    assert completion.usage.prompt_tokens == 40 and completion.usage.completion_tokens == 5


def test_token_limits_default_to_the_servers_and_max_tokens_still_works(http, fake_models):
    post(http, model="speech-llm", messages=[{"role": "user", "content": "x"}])
    post(http, model="speech-llm", messages=[{"role": "user", "content": "x"}], max_tokens=7)
    (engine,) = fake_models.chat_engines
    assert [options.max_new_tokens for _, options in engine.calls] == [100, 7]


def test_length_and_stop(sdk):
    messages = [{"role": "user", "content": [{"type": "text", "text": t} for t in "abc"]}]
    cut = sdk.chat.completions.create(model="speech-llm", messages=messages, max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.content == "user:a user:b"
    stopped = sdk.chat.completions.create(model="speech-llm", messages=messages, stop="user:b")
    assert stopped.choices[0].finish_reason == "stop" and stopped.choices[0].message.content == "user:a "


# ------------------------------------------------------------------------------------------------------ streaming


def test_streaming_role_first_then_content_then_finish_then_usage_then_done(http, wav64):
    response = post(http, messages=[audio_message(wav64)], stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(e)) for e in events[:-1]]
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "asr heard 2.0s"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_with_the_sdk(sdk):
    stream = sdk.chat.completions.create(
        model="speech-llm", messages=[{"role": "user", "content": "hello there"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "user:hello there"
    assert chunks[-1].choices[0].finish_reason == "stop" and all(c.usage is None for c in chunks)


def test_an_error_before_the_stream_starts_is_a_plain_error(http):
    error = error_of(post(http, messages=[{"role": "user", "content": "no audio"}], stream=True), 400)
    assert error["param"] == "messages" and error["code"] == "missing_audio"


def test_an_error_during_the_stream_is_an_error_event_the_sdk_raises(sdk, fake_models):
    fake_models.chat_fail_after_words = 1
    stream = sdk.chat.completions.create(
        model="speech-llm", messages=[{"role": "user", "content": [{"type": "text", "text": "a"}] * 2}], stream=True
    )
    with pytest.raises(openai.APIError, match="failed while writing"):
        list(stream)


def test_a_stream_past_its_deadline_ends_with_a_timeout_event_and_stops_the_model(
    http, use_route_settings, fake_models
):
    # Long enough for the first word to come out on a loaded machine (0.5 s was not, under a parallel test run).
    use_route_settings(RouteSettings(request_timeout_s=2.5))
    fake_models.chat_gate = threading.Event()  # the model stalls after its first word
    try:
        words = [{"type": "text", "text": t} for t in "abc"]
        response = post(http, model="speech-llm", messages=[{"role": "user", "content": words}], stream=True)
    finally:
        fake_models.chat_gate.set()
    assert response.status_code == 200
    *chunks, last = [json.loads(e) for e in sse_events(response)]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "user:a"
    assert last == {"error": {"message": "The request did not finish within 2.5 seconds.", "type": "server_error",
                              "param": "file", "code": "timeout"}}
    (engine,) = fake_models.chat_engines
    for _ in range(100):
        if engine.stopped_early:
            break
        threading.Event().wait(0.05)
    assert engine.stopped_early


def test_a_stream_past_its_deadline_before_its_first_word_is_a_504_as_unstreamed(
    http, wav64, use_route_settings, fake_models
):
    use_route_settings(RouteSettings(request_timeout_s=0.5))
    fake_models.gate = threading.Event()  # the transcription model never finishes its clip
    try:
        streamed = post(http, messages=[audio_message(wav64)], stream=True)
        whole = post(http, messages=[audio_message(wav64)])
    finally:
        fake_models.gate.set()
    assert error_of(streamed, 504) == error_of(whole, 504) == {
        "message": "The request did not finish within 0.5 seconds.", "type": "server_error", "param": "file",
        "code": "timeout",
    }


# ---------------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"max_completion_tokens": 101}, "max_completion_tokens"),
        ({"max_tokens": 101}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"temperature": 3}, "temperature"),
    ],
)
def test_what_no_model_here_can_honour_is_a_400_naming_the_parameter(http, wav64, extra, param):
    error = error_of(post(http, messages=[audio_message(wav64)], **extra), 400)
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_harmless_openai_fields_are_accepted(http, wav64):
    body = {"user": "u1", "metadata": {"a": "b"}, "store": False, "n": 1, "modalities": ["text"],
            "response_format": {"type": "text"}, "tool_choice": "none", "presence_penalty": 0, "logprobs": False}
    assert post(http, messages=[audio_message(wav64)], **body).status_code == 200


@pytest.mark.parametrize(
    ("message", "status", "param", "code"),
    [
        (audio_message("not base64!!"), 400, "messages.[0].content.[0].input_audio.data", "invalid_base64"),
        (audio_message(base64.b64encode(b"RIFF but not audio" * 20).decode()), 400, "messages.[0].content.[0]",
         "unsupported_audio"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
         400, "messages.[0].content.[0].type", "invalid_value"),
        ({"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "https://example.com/a.wav"}}]},
         400, "messages.[0].content.[0].audio_url.url", "remote_url_not_allowed"),
        ({"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "file:///etc/passwd"}}]},
         400, "messages.[0].content.[0].audio_url.url", "invalid_value"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]},
         400, "messages.[0].content.[0].input_audio.data", "invalid_value"),
        ({"role": "tool", "content": "42", "tool_call_id": "x"}, 400, "messages.[0].role", "invalid_value"),
        ({"role": "user", "content": "just text"}, 400, "messages", "missing_audio"),
    ],
)
def test_bad_messages_name_the_part_at_fault(http, message, status, param, code):
    error = error_of(post(http, messages=[message]), status)
    assert (error["param"], error["code"]) == (param, code), error


@pytest.mark.parametrize("model", ["whisper-1", "speech-llm"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_audio_that_is_not_audio_is_openais_400_naming_the_part(http, model, stream):
    """OpenAI answers audio it cannot read with 400 (the SDKs raise BadRequestError only for 400), as
    /v1/audio/* does; /transcribe keeps its 415."""
    not_audio = audio_message(base64.b64encode(b"RIFF but not audio" * 20).decode())
    error = error_of(post(http, model=model, messages=[not_audio], stream=stream), 400)
    assert (error["param"], error["type"], error["code"]) == (
        "messages.[0].content.[0]", "invalid_request_error", "unsupported_audio"
    )


def test_audio_outside_user_messages_is_refused(http, wav64):
    message = {"role": "assistant", "content": [{"type": "input_audio", "input_audio": {"data": wav64}}]}
    error = error_of(post(http, model="speech-llm", messages=[message]), 400)
    assert error["param"] == "messages.[0].content.[0]"


def test_audio_over_the_upload_limit_is_413_before_it_is_decoded(http, use_chat_settings, wav64, wav_bytes):
    use_chat_settings(ChatSettings(max_audio_bytes=40_000))
    error = error_of(post(http, messages=[audio_message(wav64)]), 413)  # 2 s of 16-bit 16 kHz: 64 kB
    assert error["param"] == "messages.[0].content.[0].input_audio.data" and error["code"] == "payload_too_large"
    small = base64.b64encode(wav_bytes(0.5)).decode()
    two = {"role": "user", "content": [audio_message(small)["content"][0]] * 3}  # 3 x 16 kB: over in all
    assert error_of(post(http, messages=[two]), 413)["param"] == "messages.[0].content.[2].input_audio.data"
    assert post(http, messages=[audio_message(small)]).status_code == 200


def test_model_errors(http, wav64):
    assert error_of(post(http, model="nope", messages=[audio_message(wav64)]), 404)["param"] == "model"
    error = error_of(post(http, model="speakers", messages=[audio_message(wav64)]), 400)
    assert error["param"] == "model" and "diarization" in error["message"]
    assert error_of(post(http, messages=[]), 400)["param"] == "messages"
    no_model = http.post("/v1/chat/completions", json={"messages": [audio_message(wav64)]})
    assert error_of(no_model, 400)["param"] == "model"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b'{"model": "whisper-1", "messages": [', None, "not valid: Expecting value (line 1, column 37)"),
        (b'{"model": "whisper-1", "messages": [{"role": "user", "content": "unterminated', None, "Unterminated string"),
        (b'{"model": "whisper-1", "messages": [{"role": "user", "content": "\xff"}]}', None, "not UTF-8"),
        (b"", None, "not valid"),
        (b'{"model": "whisper-1", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "messages",
         "nested more than 32 levels"),
        (b'{"model": "whisper-1", "metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b', "messages": []}', "metadata",
         "nested more than 32 levels"),
        (b'{"model": "whisper-1", "messages": [' + b"{}," * 1_000_000 + b"{}]}", "messages", "more than 10000 values"),
    ],
)
def test_json_cut_short_too_deep_or_too_large_is_a_400_naming_a_field_never_an_offset(http, body, param, words):
    """Truncated JSON named ``param: "36"`` (a character offset); deep nesting was a RecursionError (500)."""
    response = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    error = error_of(response, 400)
    assert (error["param"], error["type"], error["code"]) == (param, "invalid_request_error", "invalid_json")
    assert words in error["message"], error


def test_the_body_is_read_as_json_whatever_its_content_type_says(http, wav64):
    body = json.dumps({"model": "whisper-1", "messages": [audio_message(wav64)]})
    for headers in ({}, {"content-type": "text/plain"}):
        assert http.post("/v1/chat/completions", content=body, headers=headers).status_code == 200


def test_text_over_the_requests_bound_is_a_400_naming_the_part_that_goes_over(http, use_chat_settings, wav64):
    use_chat_settings(ChatSettings(max_audio_bytes=2**20, max_text_bytes=1000))
    half = "é" * 250  # 500 bytes in UTF-8
    system = {"role": "system", "content": half}
    parts = {"role": "user", "content": [*audio_message(wav64, half)["content"], {"type": "text", "text": "é"}]}
    error = error_of(post(http, model="speech-llm", messages=[system, parts]), 400)
    assert (error["param"], error["code"]) == ("messages.[1].content.[2].text", "string_above_max_length")
    assert error["message"] == "The request's text is larger than the limit of 1000 bytes in UTF-8."
    error = error_of(post(http, model="speech-llm", messages=[{"role": "user", "content": "x" * 1001}]), 400)
    assert error["param"] == "messages.[0].content"
    refusal = {"role": "assistant", "content": [{"type": "refusal", "refusal": "x" * 1001}]}
    error = error_of(post(http, model="speech-llm", messages=[refusal]), 400)
    assert error["param"] == "messages.[0].content.[0].refusal"
    assert post(http, model="speech-llm", messages=[system, audio_message(wav64, half)]).status_code == 200


def test_a_lone_surrogate_in_chat_text_is_a_400_not_a_tokenizer_failure(http):
    body = '{"model": "speech-llm", "messages": [{"role": "user", "content": "half a pair: \\ud83d"}]}'
    error = error_of(http.post("/v1/chat/completions", content=body), 400)
    assert error["param"] == "messages.[0].content" and "surrogate" in error["message"]


def test_a_25_mb_text_part_is_refused_before_any_audio_is_decoded_or_text_tokenised(http, wav64, fake_models):
    message = audio_message(wav64, "A" * 25_000_000)
    error = error_of(post(http, model="speech-llm", messages=[message]), 400)
    assert error["param"] == "messages.[0].content.[1].text" and "64 KiB" in error["message"]
    assert fake_models.loads == [], "no model was leased"


def test_the_text_a_transcription_model_reads_as_its_prompt_is_bounded_as_prompt_is(http, wav64):
    """``whisper-1`` reads the last user message's text as its prompt: the prompt's bounds, naming the message."""
    long_prompt = audio_message(wav64, "A" * (16 * 2**10 + 1))
    error = error_of(post(http, messages=[{"role": "system", "content": "hi"}, long_prompt]), 400)
    assert error["param"] == "messages.[1].content" and "16 KiB" in error["message"]
    control = audio_message(wav64, "right-to-left \u202e override")
    assert error_of(post(http, messages=[control]), 400)["param"] == "messages.[0].content"


def test_the_openapi_schema_still_describes_the_request_body(http):
    operation = http.get("/v1/openapi.json").json()["paths"]["/chat/completions"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"model", "messages"}
    assert schema["properties"]["messages"]["items"]["properties"]["role"] == {"title": "Role", "type": "string"}
    assert "$ref" not in json.dumps(schema)


def test_the_sdk_raises_typed_errors_with_the_param(sdk, wav64):
    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model="whisper-1", messages=[audio_message(wav64)], n=2)
    assert error.value.param == "n" and error.value.status_code == 400
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="nope", messages=[audio_message(wav64)])
    with pytest.raises(openai.BadRequestError) as unsupported:
        sdk.chat.completions.create(model="whisper-1", messages=[audio_message(base64.b64encode(b"x" * 64).decode())])
    assert unsupported.value.status_code == 400 and unsupported.value.param == "messages.[0].content.[0]"
    assert unsupported.value.type == "invalid_request_error"


def test_remote_urls_are_fetched_only_when_the_operator_allows_and_only_from_the_hosts_listed(
    http, use_chat_settings, wav64
):
    """The switch turns fetching on; ``STT_FETCH_ALLOWED_HOSTS`` says from where. With the switch on and nothing
    listed, a URL naming the server's own loopback (or the cloud metadata address) is refused before any
    connection: the fetch is the batches' one (``edge.remote_fetch``)."""
    audio = base64.b64decode(wav64)
    where = "messages.[0].content.[0].audio_url.url"

    def message(url: str) -> dict:
        return {"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": url}}]}

    with audio_origin(audio) as origin:
        served = message(f"{origin.url}/a.wav")
        assert error_of(post(http, messages=[served]), 400)["code"] == "remote_url_not_allowed"
        use_chat_settings(ChatSettings(allow_remote_audio_urls=True))
        refused = error_of(post(http, messages=[served]), 400)
        assert refused["code"] == "url_not_allowed" and refused["param"] == where
        metadata = error_of(post(http, messages=[message("http://169.254.169.254/latest/meta-data/")]), 400)
        assert metadata["code"] == "url_not_allowed" and metadata["param"] == where
        assert origin.paths == []
        use_chat_settings(ChatSettings(allow_remote_audio_urls=True, fetch_allowed_hosts="127.0.0.1"))
        response = post(http, messages=[served])
        assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "asr heard 2.0s"
        assert error_of(post(http, messages=[message(f"{origin.url}/redirect")]), 400)["code"] == (
            "audio_url_unreachable"
        )
        assert origin.paths == ["/a.wav", "/redirect"]  # the redirect was not followed
        use_chat_settings(
            ChatSettings(allow_remote_audio_urls=True, fetch_allowed_hosts="127.0.0.1", max_audio_bytes=1000)
        )
        assert error_of(post(http, messages=[served]), 413)["param"] == where
