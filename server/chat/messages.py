"""The request's messages as the chat pipeline takes them: roles checked, text parts as text, and each audio part
(``input_audio`` with base64 data, or vLLM's ``audio_url`` with a ``data:`` URL) as the bytes of an audio file.

Errors name the part at fault the way OpenAI does (``messages.[0].content.[1].input_audio.data``). The audio of
one request may not exceed the upload limit once decoded from base64; a remote ``http(s)`` URL is fetched only
when the operator allows it (no server-side fetching by default), and then only from the hosts the operator lists
(``edge.remote_fetch``), within the same limit and a deadline. Its text
may not exceed ``STT_CHAT_MAX_TEXT_BYTES`` in all, measured before it is copied or tokenised.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool

from core.errors import InvalidInputError, TooLargeError
from pipeline.chat import AudioPart, ChatMessage, Part, Role
from pipeline.preparation import TextBudget

from ..edge.allowed_hosts import AllowedHosts
from ..edge.data_urls import decode_base64, decoded_size, parse_data_url, unwrapped
from ..edge.remote_fetch import fetch_into
from .schemas import RequestMessage

ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int
    """Audio bytes one request may carry, all parts together, once decoded from base64 (or fetched)."""
    allow_remote_urls: bool = False
    remote_timeout_s: float = 30.0
    allowed_hosts: AllowedHosts = AllowedHosts()
    """Where remote URLs may be fetched from, when they are allowed at all (``STT_FETCH_ALLOWED_HOSTS``)."""


class _Budget:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    @property
    def left(self) -> int:
        return self.max_bytes - self.used

    def take(self, size: int, where: str) -> None:
        if size > self.left:
            raise TooLargeError(
                f"The request's audio is larger than the limit of {self.max_bytes / 2**20:g} MiB.",
                input=where,
                code="payload_too_large",
            )
        self.used += size


@dataclass
class _Budgets:
    audio: _Budget
    text: TextBudget


async def read_messages(
    messages: Sequence[RequestMessage], limits: AudioLimits, max_text_bytes: int
) -> tuple[ChatMessage, ...]:
    """The messages, their audio within ``limits`` and their text within ``max_text_bytes`` in all (UTF-8)."""
    budgets = _Budgets(_Budget(limits.max_bytes), TextBudget(max_text_bytes))
    return tuple([await _message(i, message, limits, budgets) for i, message in enumerate(messages)])


async def _message(index: int, message: RequestMessage, limits: AudioLimits, budgets: _Budgets) -> ChatMessage:
    where = f"messages.[{index}]"
    role = ROLES.get(message.role)
    if role is None:
        tools = " (tools are not supported)" if message.role in ("tool", "function") else ""
        raise InvalidInputError(
            f"Invalid role {message.role!r}{tools}: use system, developer, user or assistant.", input=f"{where}.role"
        )
    extra = message.model_extra or {}
    for field in ("tool_calls", "function_call", "audio"):
        if extra.get(field):
            raise InvalidInputError(f"{field} in messages is not supported.", input=f"{where}.{field}")
    content = message.content
    if content is None:
        if role != "assistant":
            raise InvalidInputError(f"A {message.role} message needs content.", input=f"{where}.content")
        return ChatMessage(role, ())
    if isinstance(content, str):
        return ChatMessage(role, (budgets.text.take(content, f"{where}.content"),))
    parts = [await _part(f"{where}.content.[{j}]", role, part, limits, budgets) for j, part in enumerate(content)]
    return ChatMessage(role, tuple(parts))


async def _part(where: str, role: Role, part: dict[str, Any], limits: AudioLimits, budgets: _Budgets) -> Part:
    kind = part.get("type")
    if kind == "text" or (kind == "refusal" and role == "assistant"):
        text = part.get(kind)
        if not isinstance(text, str):
            raise InvalidInputError(f"A {kind} part needs a string '{kind}'.", input=f"{where}.{kind}")
        return budgets.text.take(text, f"{where}.{kind}")
    if kind not in ("input_audio", "audio_url"):
        raise InvalidInputError(
            f"Unsupported content part type {kind!r}: use text, input_audio or audio_url.", input=f"{where}.type"
        )
    if role != "user":
        raise InvalidInputError(f"Audio is only accepted in user messages, not in {role} messages.", input=where)
    if kind == "input_audio":
        return AudioPart(_input_audio(f"{where}.input_audio", part.get("input_audio"), budgets.audio), where)
    return AudioPart(await _audio_url(f"{where}.audio_url", part.get("audio_url"), limits, budgets.audio), where)


def _input_audio(where: str, value: Any, budget: _Budget) -> bytes:
    if not isinstance(value, dict) or not isinstance(value.get("data"), str):
        raise InvalidInputError("input_audio needs 'data': the audio file, base64-encoded.", input=f"{where}.data")
    audio_format = value.get("format")
    if audio_format is not None and not isinstance(audio_format, str):  # any format FFmpeg reads: the content tells
        raise InvalidInputError("input_audio.format must be a string such as 'wav' or 'mp3'.", input=f"{where}.format")
    data: str = value["data"]
    data_url = parse_data_url(data)
    if data_url is not None and data_url.base64:  # some clients send a data: URL here
        data = data_url.data
    return _base64(data, f"{where}.data", budget)


async def _audio_url(where: str, value: Any, limits: AudioLimits, budget: _Budget) -> bytes:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        raise InvalidInputError("audio_url needs 'url': a data: URL.", input=f"{where}.url")
    data_url = parse_data_url(url)
    if data_url is not None:
        if data_url.base64:
            return _base64(data_url.data, f"{where}.url", budget)
        data = unquote_to_bytes(data_url.data)
        budget.take(len(data), f"{where}.url")
        return data
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        raise InvalidInputError("audio_url must be a data: URL (or http(s), where allowed).", input=f"{where}.url")
    if not limits.allow_remote_urls:
        raise InvalidInputError(
            "Remote audio URLs are not fetched by this server: send the audio itself (input_audio, or a data: URL).",
            input=f"{where}.url",
            code="remote_url_not_allowed",
        )
    return await _fetch(url, f"{where}.url", limits, budget)


def _base64(data: str, where: str, budget: _Budget) -> bytes:
    text = unwrapped(data)
    budget.take(decoded_size(text), where)  # refused before a byte is decoded
    try:
        decoded = decode_base64(text)
    except ValueError as exc:
        raise InvalidInputError("The audio is not valid base64.", input=where, code="invalid_base64") from exc
    if not decoded:
        raise InvalidInputError("The audio is empty.", input=where, code="empty_file")
    return decoded


async def _fetch(url: str, where: str, limits: AudioLimits, budget: _Budget) -> bytes:
    """The body of ``url`` through the server's one fetch (``edge.remote_fetch``), within what is left of the
    request's audio budget."""
    body = io.BytesIO()
    await run_in_threadpool(
        fetch_into,
        url,
        body,
        max_bytes=budget.left,
        timeout_s=limits.remote_timeout_s,
        allowed=limits.allowed_hosts,
        where=where,
    )
    budget.take(body.getbuffer().nbytes, where)
    return body.getvalue()
