"""The trust_remote_code engine on a LiteASR-shaped custom architecture built from real tiny.en weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.corpus import normalize
from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from strategies.base import RuntimeContext
from strategies.factory import create_engine
from tests.engine_checks import batched_and_alone, transcribe_whole
from tests.conftest import JFK_PHRASE


@pytest.fixture(scope="module")
def lite_engine(lite_asr_dirs: tuple[Path, Path]):
    model_dir, processor_dir = lite_asr_dirs
    spec = ModelSpec(
        id="lite", engine="remote_code", model=str(model_dir), processor=str(processor_dir), trust_remote_code=True
    )
    strategy = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    strategy.load()
    yield strategy
    strategy.unload()


def test_loads_the_custom_class_through_automodel(lite_engine):
    model = lite_engine._model
    assert type(model).__name__ == "LiteWhisperForConditionalGeneration"
    assert type(model).__module__.startswith("transformers_modules")
    # The Whisper generation config comes from the processor repo, not the model's defaults.
    assert lite_engine._generation_config.max_length == 448
    assert not lite_engine.is_multilingual


def test_transcribes_real_speech_with_a_language_and_no_extra_generate_kwargs(lite_engine, jfk_audio, monkeypatch):
    seen_kwargs: list[dict] = []
    original = lite_engine._model.generate

    def spy(input_features, **kwargs):
        seen_kwargs.append(kwargs)
        return original(input_features, **kwargs)

    monkeypatch.setattr(lite_engine._model, "generate", spy)
    result = transcribe_whole(lite_engine, jfk_audio, TranscribeOptions(language="en", task="transcribe"))
    assert JFK_PHRASE in normalize(result.text)
    assert seen_kwargs == [{}], "the engine must call generate(input_features) and nothing else"
    assert result.language == "en"
    assert result.segments and all(0 <= s.start < s.end <= result.duration for s in result.segments)


def test_the_model_really_rejects_forced_decoder_ids(lite_engine, jfk_audio):
    features = lite_engine._processor.feature_extractor(jfk_audio, sampling_rate=16_000, return_tensors="pt")
    with pytest.raises(TypeError):
        lite_engine._model.generate(features.input_features, forced_decoder_ids=[[1, 50259]])


def test_audio_longer_than_30s_is_not_dropped(lite_engine, long_concat):
    result = transcribe_whole(lite_engine, decode_audio(long_concat.path), TranscribeOptions())
    assert result.segments[-1].end > 90
    # Neither truncated nor looping: the word count stays close to the reference's.
    reference_words = len(normalize(long_concat.text).split())
    assert 0.85 * reference_words <= len(normalize(result.text).split()) <= 1.15 * reference_words


def test_refuses_to_run_code_the_operator_did_not_mark(lite_asr_dirs):
    model_dir, processor_dir = lite_asr_dirs
    spec = ModelSpec(id="t", engine="transformers", model=str(model_dir), processor=str(processor_dir))
    strategy = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    with pytest.raises(Exception, match="trust_remote_code"):
        strategy.load()
    assert not strategy.is_loaded
    assert torch.get_num_threads() >= 1


def test_batched_and_unbatched_decoding_give_the_same_text(lite_engine, english_short):
    together, alone = batched_and_alone(lite_engine, english_short)
    assert all(together) and together == alone
