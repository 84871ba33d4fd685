"""Maps a registry entry's engine to the object that runs it: an ASR strategy or a diarizer."""

from __future__ import annotations

from importlib import import_module

from core.registry import ModelSpec

from .base import ModelEngine, RuntimeContext

# Imported lazily so a deployment that only serves CTranslate2 models never imports torch.
_ASR_ENGINES: dict[str, tuple[str, str]] = {
    "ctranslate2": ("strategies.ctranslate2_engine", "CTranslate2Strategy"),
    "transformers": ("strategies.transformers_engine", "TransformersStrategy"),
    "remote_code": ("strategies.remote_code_engine", "RemoteCodeStrategy"),
}


def create_engine(spec: ModelSpec, runtime: RuntimeContext) -> ModelEngine:
    if spec.kind == "diarization":
        from .diarization.factory import create_diarizer

        return create_diarizer(spec, runtime)
    module_name, class_name = _ASR_ENGINES[spec.engine]
    return getattr(import_module(module_name), class_name)(spec, runtime)
