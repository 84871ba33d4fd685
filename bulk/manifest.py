"""The manifest: one JSON object per line, validated item by item, every error with its line number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json", "jsonl"]


class Item(BaseModel):
    """One recording to transcribe: its ``id`` (any string, unique in the manifest), where its ``audio`` is (a local
    path, ``file://``, ``http(s)://`` or ``s3://``) and the request's options (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=1024)
    audio: str = Field(min_length=1)
    model: str | None = None
    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    response_format: ResponseFormat | None = None
    diarize: bool = False
    num_speakers: int | None = Field(None, ge=1)
    prompt: str | None = None

    def options(self) -> dict[str, object]:
        """The options that change the result (everything but the id and the audio), for the fingerprint."""
        return self.model_dump(exclude={"id", "audio"})


class ManifestError(ValueError):
    """A manifest that cannot be run, with every bad line listed (``path:line: reason``)."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}:{line}: {reason}" for line, reason in problems))


def read_manifest(path: Path, max_problems: int = 20) -> list[Item]:
    """Every item of the manifest, in order; blank lines are skipped. Raises ``ManifestError`` listing the first
    ``max_problems`` bad lines (invalid JSON, a missing or wrong field, a duplicate id) before any work starts."""
    items: list[Item] = []
    problems: list[tuple[int, str]] = []
    first_line_of: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = Item.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.append((number, f"not valid JSON: {exc.msg} (column {exc.colno})"))
                continue
            except ValidationError as exc:
                problems.append((number, _validation_reason(exc)))
                continue
            if item.id in first_line_of:
                problems.append((number, f"duplicate id {item.id!r} (first on line {first_line_of[item.id]})"))
                continue
            first_line_of[item.id] = number
            items.append(item)
            if len(problems) >= max_problems:
                break
    if problems:
        raise ManifestError(path, problems[:max_problems])
    return items


def _validation_reason(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ())) or "item"
        reasons.append(f"{field}: {error['msg']}")
    return "; ".join(reasons)
