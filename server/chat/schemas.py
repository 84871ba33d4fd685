"""OpenAI's chat completion request, as far as this service reads it, and the response bodies it answers with
(``chat.completion`` and ``chat.completion.chunk``)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidInputError
from pipeline.chat import ChatEnd, ChatUsage

from ..edge.errors import validation_message
from ..edge.json_input import load_json

MAX_STOP_SEQUENCES = 4


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class RequestMessage(BaseModel):
    """A message as sent; its role and parts are checked by ``messages.read_messages`` (the errors name the part)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``. Fields this service does not know are ignored, as OpenAI's own
    optional metadata (``user``, ``metadata``, ``store``, ...); those it knows but cannot honour are refused."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[RequestMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1)
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, Any] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    prediction: Any = None

    def check_supported(self) -> None:
        """Refuse, naming the parameter, what no model here can honour: several choices, audio output, tools,
        structured output, log-probabilities, logit biases and penalties."""
        refusals = [
            ("n", self.n not in (None, 1), "Only n=1 is supported."),
            ("modalities", bool(set(self.modalities or []) - {"text"}), "Only text output is supported."),
            ("audio", self.audio is not None, "Audio output is not supported: the answer is text."),
            ("tools", bool(self.tools), "Tools are not supported by these models."),
            ("tool_choice", self.tool_choice not in (None, "none"), "Tools are not supported by these models."),
            ("functions", bool(self.functions), "Functions are not supported by these models."),
            ("function_call", self.function_call not in (None, "none"), "Functions are not supported by these models."),
            (
                "response_format",
                self.response_format is not None and self.response_format.get("type") != "text",
                "Only the text response format is supported.",
            ),
            ("logprobs", bool(self.logprobs), "Log probabilities are not supported."),
            ("top_logprobs", bool(self.top_logprobs), "Log probabilities are not supported."),
            ("logit_bias", bool(self.logit_bias), "Logit biases are not supported."),
            ("presence_penalty", bool(self.presence_penalty), "Presence penalties are not supported."),
            ("frequency_penalty", bool(self.frequency_penalty), "Frequency penalties are not supported."),
            ("prediction", self.prediction is not None, "Predicted outputs are not supported."),
            ("stream_options", self.stream_options is not None and not self.stream, "stream_options needs stream."),
        ]
        for param, refused, message in refusals:
            if refused:
                raise InvalidInputError(message, input=param, code="unsupported_parameter")

    def stop_sequences(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise InvalidInputError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences.", input="stop")
        return tuple(s for s in stops if s)

    def token_limit(self, most: int) -> int:
        """The answer's token limit: ``max_completion_tokens`` (else the older ``max_tokens``), at most ``most``,
        which is also the limit when the request sets none."""
        param, value = (
            ("max_completion_tokens", self.max_completion_tokens)
            if self.max_completion_tokens is not None
            else ("max_tokens", self.max_tokens)
        )
        if value is not None and value > most:
            raise InvalidInputError(f"{param} must be at most {most} on this server.", input=param)
        return value or most

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def read_request(body: str) -> ChatCompletionRequest:
    """The request a body holds, read by the server's bounded JSON loader (``edge.json_input``: too deep, too many
    values or not JSON at all is a 400 that names no character offset) and checked against the schema (a 400 naming
    the field)."""
    try:
        return ChatCompletionRequest.model_validate(load_json(body))
    except ValidationError as exc:
        message, param = validation_message(list(exc.errors()))
        raise InvalidInputError(message, input=param) from None


def request_body_openapi() -> dict[str, Any]:
    """The route's request body in the OpenAPI schema (the route reads the body itself): ``ChatCompletionRequest``'s
    JSON schema, its definitions inlined."""
    schema = ChatCompletionRequest.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inlined(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inlined(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inlined(value) for key, value in node.items()}
        return [inlined(value) for value in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined(schema)}}}}


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def usage_body(usage: ChatUsage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def completion_body(completion: str, model: str, text: str, end: ChatEnd) -> dict[str, Any]:
    return {
        "id": completion,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": end.finish_reason,
            }
        ],
        "usage": usage_body(end.usage),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """``chat.completion.chunk`` bodies of one streamed answer: one id and creation time for all of them."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return self._body([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def usage(self, usage: ChatUsage) -> dict[str, Any]:
        """The last chunk with ``stream_options.include_usage``: no choices, the whole answer's usage."""
        return {**self._body([]), "usage": usage_body(usage)}

    def _body(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            body["usage"] = None
        return body
