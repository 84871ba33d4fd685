"""One request's preparation on a pool of fakes: checked before its model runs, fitted once the model is leased."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from core.errors import InvalidInputError, ModelNotFoundError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from core.types import TranscribeOptions
from pipeline.pool import ModelPool
from pipeline.preparation import (
    MAX_PROMPT_BYTES, PreparedRequest, TextBudget, decoding_options, prepare, transcription_model,
)
from strategies.base import RuntimeContext
from tests.fakes import FakeModels, FakeASREngine

AUDIO = np.zeros(16_000, dtype=np.float32)


@pytest.fixture
def pool(fake_models: FakeModels):
    registry = ModelRegistry(
        [
            ModelSpec(id="multi", engine="transformers", model="x"),
            ModelSpec(id="pt-model", engine="transformers", model="y", language="pt"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="z"),
        ]
    )
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=fake_models.engine)
    yield pool
    pool.close()


def test_the_model_is_the_one_named_or_the_default_and_only_a_transcription_model(pool):
    assert transcription_model(pool.registry, None, "multi").id == "multi"
    assert transcription_model(pool.registry, "pt-model", "multi").id == "pt-model"
    with pytest.raises(ModelNotFoundError):
        prepare(pool, "missing", "multi", TranscribeOptions())
    with pytest.raises(InvalidInputError) as info:
        prepare(pool, "speakers", "multi", TranscribeOptions())
    assert info.value.input == "model" and "diarization model" in info.value.message


def test_the_language_is_resolved_before_the_model_runs(pool, fake_models):
    named = prepare(pool, None, "multi", TranscribeOptions(language="pt-BR", initial_prompt="Olá"))
    assert named == PreparedRequest(pool.registry.get("multi"), TranscribeOptions(language="pt", initial_prompt="Olá"))
    assert prepare(pool, "pt-model", "multi", TranscribeOptions()).options.language == "pt"  # the model's default
    assert fake_models.loads == [], "preparing loads no model"


def test_an_english_only_model_refuses_another_language_once_it_is_known(pool, fake_models):
    fake_models.multilingual = False
    asked = TranscribeOptions(language="de")
    prepare(pool, "multi", "multi", asked)  # not loaded yet: nobody knows it is English-only
    pool.load("multi")
    with pytest.raises(InvalidInputError) as info:
        prepare(pool, "multi", "multi", asked)
    assert info.value.input == "language"


def test_the_leased_model_decodes_with_what_it_can_do_and_one_language(pool, fake_models):
    fake_models.detected_language, fake_models.detected_probability = "pt", 0.8
    request = prepare(pool, "multi", "multi", TranscribeOptions())
    with pool.use(request.spec) as lease:
        options, probability = decoding_options(lease, AUDIO, request.options)
    assert (options.language, probability) == ("pt", 0.8)
    fake_models.multilingual = False
    request = prepare(pool, "pt-model", "multi", TranscribeOptions(task="translate"))
    with pool.use(request.spec) as lease, pytest.raises(InvalidInputError) as info:
        decoding_options(lease, AUDIO, request.options)  # a Portuguese default on an English-only model
    assert info.value.input == "language"
    request = prepare(pool, "pt-model", "multi", TranscribeOptions(language="en", task="translate"))
    with pool.use(request.spec) as lease:
        options, probability = decoding_options(lease, AUDIO, request.options)
    assert (options.language, options.task, probability) == ("en", "transcribe", 1.0)


def test_the_leased_model_refuses_what_its_engine_cannot_give(pool, fake_models):
    class Plain(FakeASREngine):
        takes_keywords = False

    pool = ModelPool(pool.registry, RuntimeContext("cpu", HubAccess()), factory=fake_models.factory_for(Plain))
    request = prepare(pool, "multi", "multi", TranscribeOptions(keywords=("Kenobi",)))
    with pool.use(request.spec) as lease, pytest.raises(InvalidInputError) as info:
        decoding_options(lease, AUDIO, request.options)
    pool.close()
    assert info.value.input == "keywords"


# ------------------------------------------------------------------------------------------------ the text bounds


def _refused(pool, options: TranscribeOptions) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        prepare(pool, "multi", "multi", options)
    return info.value


def test_a_prompt_over_the_byte_bound_is_refused_before_it_is_copied_or_tokenised(pool, fake_models):
    """An 8 MiB prompt cost 1.3 GB: it is refused on its length alone, allocating nothing of its size."""
    prompt = "A" * 8 * 2**20
    tracemalloc.start()
    try:
        error = _refused(pool, TranscribeOptions(initial_prompt=prompt))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.input == "prompt" and "16 KiB" in error.message
    assert peak < 2**20, f"{peak} bytes allocated to refuse it"
    assert fake_models.loads == []


def test_the_prompt_bound_is_in_utf8_bytes(pool):
    prepare(pool, "multi", "multi", TranscribeOptions(initial_prompt="A" * MAX_PROMPT_BYTES))
    prepare(pool, "multi", "multi", TranscribeOptions(initial_prompt="é" * (MAX_PROMPT_BYTES // 2)))
    assert _refused(pool, TranscribeOptions(initial_prompt="é" * (MAX_PROMPT_BYTES // 2 + 1))).input == "prompt"
    assert _refused(pool, TranscribeOptions(initial_prompt="😀" * (MAX_PROMPT_BYTES // 4 + 1))).input == "prompt"


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\u202a", "\u2066", "\u2069",
                                       "\ud800"])
def test_control_and_bidirectional_override_characters_are_refused_in_prompts_and_keywords(pool, character):
    assert _refused(pool, TranscribeOptions(initial_prompt=f"Hello {character} world")).input == "prompt"
    assert _refused(pool, TranscribeOptions(keywords=("fine", f"bad{character}"))).input == "keywords"


def test_line_breaks_and_tabs_are_text_in_a_prompt_but_not_in_a_keyword(pool):
    prepare(pool, "multi", "multi", TranscribeOptions(initial_prompt="Minutes:\n\tAlice\r\nBob", keywords=("Zoë",)))
    assert _refused(pool, TranscribeOptions(keywords=("two\nlines",))).input == "keywords"


def test_keywords_are_counted_without_separators(pool):
    ten = tuple(f"{i}".rjust(50, "k") for i in range(10))  # 500 characters, 518 with ", " between them
    prepare(pool, "multi", "multi", TranscribeOptions(keywords=ten))
    error = _refused(pool, TranscribeOptions(keywords=(*ten, "x")))
    assert error.input == "keywords" and "at most 500 characters" in error.message


def test_a_text_budget_takes_pieces_until_one_goes_over_and_names_it():
    budget = TextBudget(10)
    assert budget.take("ééé", "messages.[0].content") == "ééé"  # 6 bytes
    with pytest.raises(InvalidInputError) as info:
        budget.take("abcde", "messages.[1].content.[2].text")
    assert (info.value.input, info.value.code) == ("messages.[1].content.[2].text", "string_above_max_length")
    assert info.value.message == "The request's text is larger than the limit of 10 bytes in UTF-8."
    assert budget.take("abcd", "messages.[1].content.[3].text") == "abcd" and budget.used == 10
    with pytest.raises(InvalidInputError) as info:
        TextBudget(2**16).take("half a pair: \ud83d", "messages.[0].content")
    assert info.value.input == "messages.[0].content" and "lone surrogate" in info.value.message
