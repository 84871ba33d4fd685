"""The operator's model registry: an allow-list of models that requests may name."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import InvalidInputError, ModelNotFoundError
from .model_files import local_model_path

Engine = Literal["ctranslate2", "transformers", "remote_code", "embedded_diarizer", "pyannote", "speech_llm"]
ModelKind = Literal["transcription", "diarization", "chat"]
KindFilter = ModelKind | tuple[ModelKind, ...] | None
"""A model kind, several (any of them will do), or None: any kind."""
DIARIZATION_ENGINES: frozenset[str] = frozenset({"embedded_diarizer", "pyannote"})
CHAT_ENGINES: frozenset[str] = frozenset({"speech_llm"})
"""Engines of models that take audio and text and generate text (``/v1/chat/completions``)."""
_PYTHON_CLASS = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_COMMIT = re.compile(r"[0-9a-f]{40}")
Precision = Literal["auto", "float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32"]


class ModelSpec(BaseModel):
    """One registry entry. Only the operator writes these; no request can create or change one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    engine: Engine
    model: str = Field(description="Hugging Face repo id, local directory, or 'embedded:tiny.en'.")
    revision: str | None = None
    processor: str | None = Field(None, description="Repo or directory of the processor, when not the model's own.")
    language: str | None = Field(None, description="Language used when a request names none.")
    dtype: Precision = "auto"
    trust_remote_code: bool = False
    preload: bool = False
    description: str = ""
    class_: str | None = Field(
        None,
        alias="class",
        pattern=_PYTHON_CLASS,
        description="speech_llm only: 'package.module:ClassName', an operator-installed model class loaded with its "
        "own from_pretrained instead of a transformers auto class.",
    )
    processor_class: str | None = Field(
        None,
        pattern=_PYTHON_CLASS,
        description="speech_llm only: 'package.module:ClassName' of the processor (or collator) loaded with its "
        "from_pretrained instead of AutoProcessor.",
    )

    @property
    def kind(self) -> ModelKind:
        """What the model does: transcribe speech, tell speakers apart, or answer a chat (audio and text in)."""
        if self.engine in DIARIZATION_ENGINES:
            return "diarization"
        return "chat" if self.engine in CHAT_ENGINES else "transcription"

    @model_validator(mode="after")
    def _python_classes_only_for_speech_llm(self) -> ModelSpec:
        for name, value in (("class", self.class_), ("processor_class", self.processor_class)):
            if value is not None and self.engine not in CHAT_ENGINES:
                raise ValueError(f"model {self.id!r}: {name} is only for the speech_llm engine, not {self.engine!r}")
        return self

    @model_validator(mode="after")
    def _remote_code_needs_consent(self) -> ModelSpec:
        if self.engine == "remote_code" and not self.trust_remote_code:
            raise ValueError(
                f"model {self.id!r} uses the remote_code engine but the operator has not set trust_remote_code: true"
            )
        return self

    @model_validator(mode="after")
    def _remote_code_is_pinned(self) -> ModelSpec:
        # Code from a Hub repo runs in the server: it must be the commit the operator reviewed, never a moving
        # branch. A local directory or an embedded model is the operator's own copy.
        if self.trust_remote_code and local_model_path(self.model) is None and not _COMMIT.fullmatch(self.revision or ""):
            raise ValueError(
                f"model {self.id!r} sets trust_remote_code, so its revision must pin the reviewed commit of "
                f"{self.model!r} (40 hexadecimal characters, e.g. from `huggingface-cli repo-info` or the Hub's "
                f"commit history), not {self.revision!r}"
            )
        return self


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec]


class ModelRegistry:
    def __init__(self, specs: list[ModelSpec]) -> None:
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            if spec.id in self._specs:
                raise ValueError(f"duplicate model id {spec.id!r} in the registry")
            self._specs[spec.id] = spec

    @classmethod
    def from_file(cls, path: Path, extra: Sequence[ModelSpec] = ()) -> ModelRegistry:
        """The operator's YAML file, plus ``extra`` entries the operator configured through settings."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls([*_RegistryFile.model_validate(data).models, *extra])

    def get(self, model_id: str, kind: KindFilter = None, *, purpose: str | None = None) -> ModelSpec:
        """The entry for ``model_id``; with ``kind`` (one or several), only a model of that kind will do. A model
        of another kind is refused by what it is not, or with ``purpose`` (``"answer a chat"``) by what it cannot do."""
        spec = self._specs.get(model_id)
        if spec is None:
            raise ModelNotFoundError(
                f"The model {model_id!r} does not exist. Valid models: {', '.join(self.ids(kind))}.",
                input="model",
            )
        kinds = _kinds(kind)
        if kinds and spec.kind not in kinds:
            refusal = f": it cannot {purpose}" if purpose else f", not a {' or '.join(kinds)} model"
            raise InvalidInputError(
                f"The model {model_id!r} is a {spec.kind} model{refusal}. Valid models: {', '.join(self.ids(kind))}.",
                input="model",
            )
        return spec

    def ids(self, kind: KindFilter = None) -> list[str]:
        kinds = _kinds(kind)
        return [spec.id for spec in self._specs.values() if not kinds or spec.kind in kinds]

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs


def _kinds(kind: KindFilter) -> tuple[ModelKind, ...]:
    if kind is None:
        return ()
    return (kind,) if isinstance(kind, str) else kind
