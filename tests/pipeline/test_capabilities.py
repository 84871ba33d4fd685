"""What a model can do with a request: the language policy and the options an engine must honour, on fakes."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidInputError
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from pipeline.capabilities import check_engine_can_honour, fit_to_model, pin_language_probability, requested_language
from strategies.base import RuntimeContext
from tests.fakes import FakeASREngine

SPEC = ModelSpec(id="fake", engine="ctranslate2", model="x")


class Plain(FakeASREngine):
    takes_keywords = False
    returns_logprobs = False


def test_the_requested_language_is_a_code_or_the_models_default():
    assert requested_language(TranscribeOptions(language="Portuguese"), SPEC).language == "pt"
    assert requested_language(TranscribeOptions(), SPEC).language is None
    portuguese = ModelSpec(id="pt", engine="ctranslate2", model="x", language="pt")
    assert requested_language(TranscribeOptions(), portuguese).language == "pt"


def test_an_english_only_model_hears_english_and_transcribes_instead_of_translating():
    asked = TranscribeOptions(language=None, task="translate")
    assert fit_to_model(asked, True, SPEC) is asked
    fitted = fit_to_model(asked, False, SPEC)
    assert (fitted.language, fitted.task) == ("en", "transcribe")
    with pytest.raises(InvalidInputError) as info:
        fit_to_model(TranscribeOptions(language="de"), False, SPEC)
    assert info.value.input == "language"
    assert str(info.value) == "The model 'fake' is English-only and cannot transcribe language 'de'."


def test_keywords_and_logprobs_are_refused_by_an_engine_that_cannot_give_them_naming_the_field(fake_models):
    runtime = RuntimeContext("cpu", HubAccess())
    asked = TranscribeOptions(keywords=("Kenobi",), logprobs=True)
    check_engine_can_honour(asked, FakeASREngine(SPEC, runtime, fake_models), SPEC)  # an engine that can: nothing to say
    with pytest.raises(InvalidInputError) as keywords:
        check_engine_can_honour(asked, Plain(SPEC, runtime, fake_models), SPEC)
    assert keywords.value.input == "keywords"
    assert str(keywords.value) == "The model 'fake' (ctranslate2 engine) cannot be biased towards keywords."
    with pytest.raises(InvalidInputError) as logprobs:
        check_engine_can_honour(TranscribeOptions(logprobs=True), Plain(SPEC, runtime, fake_models), SPEC)
    assert logprobs.value.input == "token_logprobs"
    assert str(logprobs.value) == "The model 'fake' (ctranslate2 engine) cannot return token log-probabilities."


def test_the_language_is_pinned_once_with_how_sure_the_engine_is(fake_models):
    engine = FakeASREngine(SPEC, RuntimeContext("cpu", HubAccess()), fake_models)
    audio = np.zeros(16_000, dtype=np.float32)
    fake_models.detected_language, fake_models.detected_probability = "pt", 0.8
    pinned, probability = pin_language_probability(engine, audio, TranscribeOptions())
    assert (pinned.language, probability) == ("pt", 0.8)
    assert pin_language_probability(engine, audio, TranscribeOptions(language="en"))[1] == 1.0  # given, not detected
    fake_models.detected_language = None  # the engine leaves it to each clip
    assert pin_language_probability(engine, audio, TranscribeOptions()) == (TranscribeOptions(), None)
