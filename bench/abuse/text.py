"""Text and JSON a careless or hostile client sends: prompts of megabytes, a chat text part of 25 MB, a realtime
prompt of 8 MB, JSON nested past any sense or cut short, keywords with control characters. Each must be a 400 naming
its field, refused before anything is tokenised (the server's memory stays within tens of megabytes), never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from .case import Case, Outcome, Target

JFK = "en/jfk_inaugural_1961_excerpt.flac"
PROMPT_BYTES = 8 * 2**20
"""The issue's prompt: the most the transcription form lets one field carry (``MAX_REFERENCE_FIELD_BYTES``)."""
CHAT_TEXT_BYTES = 25_000_000
REALTIME_PROMPT_BYTES = 8_000_000
DEEP = 100_000
"""Levels of nesting: far past Python's recursion limit."""
TIMEOUT_S = 300


def _client(target: Target) -> httpx.Client:
    return httpx.Client(base_url=target.url, headers=target.headers, timeout=TIMEOUT_S)


def _answer(response: httpx.Response) -> tuple[str, str]:
    """``"<status> <param>"`` and the error's message (or the start of the body)."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    param = error.get("param")
    return f"{response.status_code} {param if param is not None else '(no param)'}", str(
        error.get("message", response.text[:120])
    )[:120]


def _outcome(*answers: tuple[str, str]) -> Outcome:
    return Outcome([status for status, _ in answers], " / ".join(message for _, message in answers))


def _transcribe(target: Target, **fields: Any) -> tuple[str, str]:
    audio = (target.corpus_dir / JFK).read_bytes()
    with _client(target) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("jfk.flac", audio, "audio/flac")},
            data={"model": "whisper-1", **fields},
        )
    return _answer(response)


def _chat(target: Target, body: bytes) -> tuple[str, str]:
    with _client(target) as client:
        response = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    return _answer(response)


def prompt_8mib(target: Target) -> Outcome:
    return _outcome(_transcribe(target, prompt="A" * PROMPT_BYTES))


def chat_text_25mb(target: Target) -> Outcome:
    audio = base64.b64encode((target.corpus_dir / JFK).read_bytes()).decode()
    message = {
        "role": "user",
        "content": [
            {"type": "input_audio", "input_audio": {"data": audio, "format": "flac"}},
            {"type": "text", "text": "A" * CHAT_TEXT_BYTES},
        ],
    }
    return _outcome(_chat(target, json.dumps({"model": "whisper-1", "messages": [message]}).encode()))


def realtime_prompt(target: Target, size: int = REALTIME_PROMPT_BYTES) -> Outcome:
    """A ``session.update`` whose prompt is ``size`` bytes: an ``error`` event naming the prompt, and the session lives
    on (a second update is answered ``session.updated``); or, for a message over the socket's own bound, a close."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = target.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"

    def update(prompt: str) -> str:
        return json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "transcription": {"prompt": prompt}}}}})

    statuses: list[str] = []
    notes = ""
    with connect(url, additional_headers=target.headers, max_size=None, open_timeout=30) as socket:
        try:
            statuses.append(json.loads(socket.recv(timeout=30))["type"])
            socket.send(update("A" * size))
            event = json.loads(socket.recv(timeout=TIMEOUT_S))
            error = event.get("error") or {}
            statuses.append(f"{event['type']} {error.get('param')}" if error else event["type"])
            notes = str(error.get("message", ""))[:120]
            socket.send(update("Kennedy"))
            statuses.append(json.loads(socket.recv(timeout=30))["type"])
        except ConnectionClosed as closed:
            statuses.append(f"close {closed.rcvd.code if closed.rcvd else None}")
            notes = closed.rcvd.reason if closed.rcvd else ""
    return Outcome(statuses, notes)


def chunking_deep(target: Target) -> Outcome:
    return _outcome(_transcribe(target, chunking_strategy="[" * DEEP + "]" * DEEP))


def chunking_padding(target: Target) -> Outcome:
    padding = {"type": "server_vad", "prefix_padding_ms": 10**9}
    return _outcome(_transcribe(target, chunking_strategy=json.dumps(padding)))


def chat_truncated(target: Target) -> Outcome:
    return _outcome(_chat(target, b'{"model": "whisper-1", "messages": ['))


def chat_deep(target: Target) -> Outcome:
    return _outcome(_chat(target, b'{"model": "whisper-1", "messages": ' + b"[" * DEEP + b"]" * DEEP + b"}"))


def keywords_controls(target: Target) -> Outcome:
    return _outcome(
        _transcribe(target, **{"keywords[]": ["Kennedy", "Ken\x00nedy"]}),
        _transcribe(target, **{"keywords[]": ["Kennedy", "right\u202eleft"]}),
        _transcribe(target, **{"keywords[]": [f"{i}".rjust(50, "k") for i in range(10)]}),  # 500 characters: 200
    )


def _case(name: str, run: Callable[[Target], Outcome], target: str) -> Case:
    return Case(name, run, target)


CASES = [
    _case("prompt-8mib", prompt_8mib, "400 prompt, before tokenising; RSS +<= 50 MB"),
    _case("chat-text-25mb", chat_text_25mb, "400 messages.[0].content.[1].text, before tokenising; RSS +<= 50 MB"),
    _case("realtime-prompt-8mb", realtime_prompt, "error event naming the prompt, session lives; RSS +<= 50 MB"),
    _case("chunking-deep", chunking_deep, "400 chunking_strategy (was a 500: RecursionError)"),
    _case("chunking-padding-1e9", chunking_padding, "400 chunking_strategy (was 200 after 53-94 s of CPU)"),
    _case("chat-json-truncated", chat_truncated, "400 with no param (was param \"36\", an offset)"),
    _case("chat-json-deep", chat_deep, "400 messages, never a 500"),
    _case("keywords-controls", keywords_controls, "400 keywords for NUL and U+202E; ten 50-character keywords 200"),
]
