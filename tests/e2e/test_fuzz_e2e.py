"""Generated requests against the real server: no 500, no crash, always the OpenAI error shape."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

text_values = st.one_of(
    st.none(),
    st.sampled_from(["", "json", "verbose_json", "srt", "whisper-1", "tiny-en", "en", "pt-BR", "0", "1", "nan", "-inf",
                     "true", "word", "segment", "../x", "a/b", "\x00"]),
    st.text(max_size=40),
)


@st.composite
def uploads(draw, real_audio: bytes):
    kind = draw(st.sampled_from(["real", "prefix", "bytes", "empty"]))
    if kind == "real":
        content = real_audio
    elif kind == "prefix":
        content = real_audio[: draw(st.integers(1, len(real_audio)))]
    elif kind == "bytes":
        content = draw(st.binary(min_size=1, max_size=2048))
    else:
        content = b""
    name = draw(st.one_of(st.just("audio.flac"), st.text(min_size=1, max_size=300)))
    content_type = draw(st.sampled_from(["audio/flac", "application/octet-stream", "text/plain", "image/png", ""]))
    return name, content, content_type


def _fields(draw_values: dict[str, str | None]) -> dict[str, str]:
    return {key: value for key, value in draw_values.items() if value is not None}


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code == 503, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)


@pytest.fixture(scope="module")
def short_audio(corpus_dir) -> bytes:
    return (corpus_dir / "en/ls_tc_1089-134686-0001.flac").read_bytes()  # 3.3 s


def test_openai_route_never_fails_with_500(http, short_audio):
    @FUZZ
    @given(
        upload=uploads(short_audio),
        model=text_values,
        language=text_values,
        response_format=text_values,
        temperature=text_values,
        granularity=text_values,
        stream=text_values,
        chunking=text_values,
        route=st.sampled_from(["/v1/audio/transcriptions", "/v1/audio/translations"]),
    )
    def run(upload, model, language, response_format, temperature, granularity, stream, chunking, route):
        fields = _fields({
            "model": model, "language": language, "response_format": response_format,
            "temperature": temperature, "timestamp_granularities[]": granularity, "stream": stream,
            "chunking_strategy": chunking,
        })
        try:
            response = http.post(route, files={"file": upload}, data=fields)
        except httpx.LocalProtocolError:
            return  # the client itself refuses to send this (e.g. a header with a newline)
        _check(response)

    run()


def test_transcribe_route_never_fails_with_500(http, short_audio):
    @FUZZ
    @given(
        upload=uploads(short_audio),
        model_id=text_values,
        language=text_values,
        task=text_values,
        word_timestamps=text_values,
    )
    def run(upload, model_id, language, task, word_timestamps):
        fields = _fields({"model_id": model_id, "language": language, "task": task, "word_timestamps": word_timestamps})
        try:
            response = http.post("/transcribe", files={"file": upload}, data=fields)
        except httpx.LocalProtocolError:
            return
        _check(response)

    run()


def test_server_survived_the_fuzzing(server, http, short_audio):
    assert server.process.poll() is None
    response = http.post("/transcribe", files={"file": ("a.flac", short_audio, "audio/flac")})
    assert response.status_code == 200 and response.json()["text"]
    assert server.wait_for_leftovers([]) == []
