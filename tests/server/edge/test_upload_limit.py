from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.edge.upload_limit import UploadLimitMiddleware

LIMIT = 1000
bodies_read: list[int] = []


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    bodies_read.append(len(body))
    return JSONResponse({"bytes": len(body)})


def _client() -> httpx.AsyncClient:
    app = UploadLimitMiddleware(Starlette(routes=[Route("/upload", echo, methods=["POST"])]), max_bytes=LIMIT)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture(autouse=True)
def _clear():
    bodies_read.clear()


async def _chunks(total: int, size: int = 100):
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def _run(coro):
    import asyncio

    return asyncio.run(coro)


def test_within_the_limit_passes():
    async def go():
        async with _client() as client:
            return await client.post("/upload", content=b"x" * LIMIT)

    response = _run(go())
    assert response.status_code == 200 and response.json() == {"bytes": LIMIT}


def test_declared_length_over_the_limit_is_refused_before_reading():
    async def go():
        async with _client() as client:
            return await client.post("/upload", content=b"x" * (LIMIT + 1))

    response = _run(go())
    assert response.status_code == 413 and bodies_read == []
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "file" and "MiB" in error["message"]


def test_streamed_body_without_length_is_cut_at_the_limit():
    async def go():
        async with _client() as client:
            return await client.post("/upload", content=_chunks(LIMIT * 5))

    response = _run(go())
    assert response.status_code == 413 and bodies_read == []


def test_streamed_body_within_the_limit_passes():
    async def go():
        async with _client() as client:
            return await client.post("/upload", content=_chunks(LIMIT - 10))

    response = _run(go())
    assert response.status_code == 200 and response.json() == {"bytes": LIMIT - 10}


def test_an_oversized_chat_request_names_its_messages():
    app = UploadLimitMiddleware(
        Starlette(routes=[Route("/v1/chat/completions", echo, methods=["POST"])]), max_bytes=LIMIT
    )

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/chat/completions", content=b"x" * (LIMIT + 1))

    response = _run(go())
    assert response.status_code == 413 and response.json()["error"]["param"] == "messages"
