from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from server.edge.auth import ApiKeyMiddleware
from bench.server import running_server

KEYS = ["sk-test-one", "sk-test-two"]
HF_TOKEN = "hf_do_not_leak_this_token"


def _app(keys: list[str]) -> ApiKeyMiddleware:
    async def ok(_):
        return PlainTextResponse("ok")

    routes = [Route(path, ok) for path in ("/livez", "/readyz", "/healthz", "/v1/models", "/metrics")]
    return ApiKeyMiddleware(Starlette(routes=routes), keys=keys)


def _get(app, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(path, headers=headers or {})

    return asyncio.run(go())


@pytest.mark.parametrize("path", ["/v1/models", "/metrics"])
def test_protected_routes_need_a_valid_bearer_key(path):
    app = _app(KEYS)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic sk-test-one"}, {"Authorization": "Bearer "}):
        response = _get(app, path, headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "invalid_api_key"
    for key in KEYS:
        assert _get(app, path, {"Authorization": f"Bearer {key}"}).status_code == 200


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_health_routes_are_open(path):
    assert _get(_app(KEYS), path).status_code == 200


def test_no_keys_means_no_authentication():
    assert _get(_app([]), "/v1/models").status_code == 200


@pytest.fixture(scope="module")
def keyed_server(corpus_dir):
    with running_server({"STT_API_KEYS": ",".join(KEYS), "HF_TOKEN": HF_TOKEN}) as server:
        yield server


PROTECTED = [
    ("POST", "/transcribe"),
    ("POST", "/v1/audio/transcriptions"),
    ("POST", "/v1/audio/translations"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/tiny-en"),
    ("GET", "/metrics"),
    ("GET", "/v1/openapi.json"),
]
OPEN_DOCS = ["/docs", "/docs.json", "/static_content/swagger-ui.css"]
"""BentoML's docs page and what it loads: public like the web page, so that it opens in a browser."""


def test_every_route_but_health_is_protected_on_the_real_server(keyed_server, jfk_path):
    with httpx.Client(base_url=keyed_server.url, timeout=120) as http:
        for route in ("/livez", "/readyz", "/healthz", *OPEN_DOCS):
            assert http.get(route).status_code == 200, route
        for method, route in PROTECTED:
            for headers in ({}, {"Authorization": "Bearer wrong-key"}):
                response = http.request(method, route, headers=headers)
                assert response.status_code == 401, (method, route, headers)
                assert response.json()["error"]["code"] == "invalid_api_key"
        good = {"Authorization": f"Bearer {KEYS[1]}"}
        with jfk_path.open("rb") as f:
            assert http.post("/transcribe", files={"file": f}, headers=good).status_code == 200
        assert http.get("/v1/models", headers=good).status_code == 200
        unavailable = http.post("/v1/audio/transcriptions", files={"file": jfk_path.read_bytes()},
                                data={"model": "freds0"}, headers=good)
        assert unavailable.status_code == 503
        metrics = http.get("/metrics", headers=good).text
        schema = http.get("/docs.json").text + http.get("/v1/openapi.json", headers=good).text
    for text in (metrics, schema, unavailable.text, keyed_server.log()):
        assert not any(secret in text for secret in [*KEYS, HF_TOKEN])


def test_openai_sdk_with_and_without_the_key(keyed_server, jfk_path):
    wrong = openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert "API key" in info.value.message
    with jfk_path.open("rb") as f, pytest.raises(openai.AuthenticationError):
        wrong.audio.transcriptions.create(file=f, model="whisper-1")
    right = openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key=KEYS[0], max_retries=0)
    with jfk_path.open("rb") as f:
        assert "country" in right.audio.transcriptions.create(file=f, model="whisper-1").text
    with jfk_path.open("rb") as f:
        assert "country" in right.audio.translations.create(file=f, model="whisper-1").text
    assert any(m.id == "tiny-en" for m in right.models.list().data)


def test_bentoml_client_sends_the_key_as_a_bearer_token(keyed_server, jfk_path):
    import bentoml

    with bentoml.SyncHTTPClient(keyed_server.url, token=KEYS[0], timeout=120) as client:
        assert "country" in client.transcribe(file=jfk_path)["text"]


def test_the_service_warns_at_start_when_no_keys_are_set():
    from server.edge.auth import open_access_warning

    warning = open_access_warning([])
    assert warning is not None and "STT_API_KEYS" in warning and "127.0.0.1" in warning
    assert open_access_warning(KEYS) is None


@pytest.mark.parametrize(
    ("env", "host"),
    [({}, "127.0.0.1"), ({"STT_API_KEYS": "sk-a"}, "0.0.0.0"), ({"HOST": "0.0.0.0"}, "0.0.0.0"),
     ({"HOST": "192.0.2.7", "STT_API_KEYS": "sk-a"}, "192.0.2.7"), ({"STT_API_KEYS": ""}, "127.0.0.1")],
)
def test_make_serve_listens_on_this_machine_only_without_keys(env, host, tmp_path):
    import os
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[3]
    clean = {k: v for k, v in os.environ.items() if k not in ("HOST", "STT_API_KEYS")}
    # -n: print the command only; VENV names a venv whose .installed stamp is newer than the requirements.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / ".installed").touch()
    command = subprocess.run(["make", "-n", "-s", "serve", f"VENV={venv}"], cwd=root, env={**clean, **env},
                             capture_output=True, text=True, check=True).stdout
    assert f"--host {host} " in command, command
