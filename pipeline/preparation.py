"""One request's preparation, the same for files, streams and live sessions: checked once before its model runs
(which model, which language), then fitted to the leased model (what its engine can do, one language for the
audio)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.registry import ModelRegistry, ModelSpec
from core.types import TranscribeOptions

from .capabilities import check_engine_can_honour, fit_to_model, pin_language_probability, requested_language
from .pool import ModelLease, ModelPool


@dataclass(frozen=True)
class PreparedRequest:
    """A request checked before its model runs: the model's registry entry, and the options with the request's
    language resolved."""

    spec: ModelSpec
    options: TranscribeOptions


def transcription_model(registry: ModelRegistry, model_id: str | None, default_model: str) -> ModelSpec:
    """The transcription model a request names, or the default one."""
    return registry.get(model_id or default_model, kind="transcription")


def prepare(pool: ModelPool, model_id: str | None, default_model: str, options: TranscribeOptions) -> PreparedRequest:
    """Everything about a request that can be checked before its model runs: the model, and the language (an
    ISO-639-1 code, or the model's default), refused now when the model is known to be English-only."""
    spec = transcription_model(pool.registry, model_id, default_model)
    options = requested_language(options, spec)
    multilingual = pool.known_multilingual(spec.id)
    if multilingual is not None:  # a model that has loaded once: an impossible language is refused now
        fit_to_model(options, multilingual, spec)
    return PreparedRequest(spec, options)


def decoding_options(
    lease: ModelLease, audio: np.ndarray, options: TranscribeOptions
) -> tuple[TranscribeOptions, float | None]:
    """The options the leased model decodes ``audio`` with (what its engine can do, one language for every clip),
    and the probability of that language (see ``pin_language_probability``)."""
    check_engine_can_honour(options, lease.asr, lease.spec)
    return pin_language_probability(lease.asr, audio, fit_to_model(options, lease.asr.is_multilingual, lease.spec))
