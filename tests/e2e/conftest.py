"""The end-to-end modules' clients: ``sdk`` (the official ``openai`` client) and ``http`` on the module's server.
That is the shared ``server`` unless a module names its own by overriding ``target_server``, and ``api_key`` when
that server asks for one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from bench.server import RunningServer


@pytest.fixture(scope="module")
def target_server(server: RunningServer) -> RunningServer:
    return server


@pytest.fixture(scope="module")
def api_key() -> str | None:
    return None


@pytest.fixture(scope="module")
def sdk(target_server: RunningServer, api_key: str | None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{target_server.url}/v1", api_key=api_key or "not-needed", max_retries=0, timeout=300
    )


@pytest.fixture(scope="module")
def http(target_server: RunningServer, api_key: str | None) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=target_server.url, timeout=300, headers=headers) as client:
        yield client
