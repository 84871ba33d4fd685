"""Typed service configuration, read from environment variables prefixed with ``STT_``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STT_", extra="ignore")

    registry_path: Path = Field(
        PROJECT_ROOT / "models.yaml",
        description="The operator's model registry (YAML): the only models a request may name.",
    )
    default_model: str = Field("tiny-en", description="Registry id used when a request names no model.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where models run; auto picks CUDA when a GPU is visible."
    )
    hf_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("STT_HF_TOKEN", "HF_TOKEN"),
        description="Hugging Face token passed to every Hub load (read from HF_TOKEN).",
    )
    hf_cache_dir: Path | None = Field(
        None, description="Hugging Face cache directory; unset means the library default (HF_HOME)."
    )
    max_upload_bytes: int = Field(100 * 2**20, gt=0, description="Largest accepted upload (413 beyond).")
    max_audio_duration_s: float = Field(4 * 3600, gt=0, description="Longest accepted audio (413 beyond).")
    model_load_retry_s: float = Field(
        30.0, ge=0, description="After a failed load, answer 503 at once for this long before trying again."
    )
    cpu_threads: int = Field(0, ge=0, description="CPU threads per model; 0 uses every core this process may run on.")

    @property
    def cpu_thread_count(self) -> int:
        # CTranslate2's own default (4) oversubscribes small machines.
        return self.cpu_threads or len(os.sched_getaffinity(0))

    @property
    def hf_token_value(self) -> str | None:
        return self.hf_token.get_secret_value() if self.hf_token else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
