"""Maps a registry entry's engine to the strategy that runs it."""

from __future__ import annotations

from importlib import import_module

from stt.registry import Engine, ModelSpec

from .base import ASRStrategy, RuntimeContext

# Imported lazily so a deployment that only serves CTranslate2 models never imports torch.
_ENGINES: dict[Engine, tuple[str, str]] = {
    "ctranslate2": ("strategies.ctranslate2_engine", "CTranslate2Strategy"),
    "transformers": ("strategies.transformers_engine", "TransformersStrategy"),
    "remote_code": ("strategies.remote_code_engine", "RemoteCodeStrategy"),
}


def strategy_class(engine: Engine) -> type[ASRStrategy]:
    module_name, class_name = _ENGINES[engine]
    return getattr(import_module(module_name), class_name)


def create_strategy(spec: ModelSpec, runtime: RuntimeContext) -> ASRStrategy:
    return strategy_class(spec.engine)(spec, runtime)
