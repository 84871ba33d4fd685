"""Maps a registry entry's engine to the object that runs it: an ASR engine, a chat engine or a diarizer."""

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
_CHAT_ENGINES: dict[str, tuple[str, str]] = {
    "speech_llm": ("strategies.speech_llm_engine", "SpeechLLMStrategy"),
}


def create_engine(spec: ModelSpec, runtime: RuntimeContext) -> ModelEngine:
    if spec.kind == "diarization":
        from .diarization.factory import create_diarizer

        return create_diarizer(spec, runtime)
    engines = _CHAT_ENGINES if spec.kind == "chat" else _ASR_ENGINES
    module_name, class_name = engines[spec.engine]
    return getattr(import_module(module_name), class_name)(spec, runtime)
