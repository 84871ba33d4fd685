"""The trust_remote_code engine on a LiteASR-shaped custom architecture built from real tiny.en weights."""

from __future__ import annotations

import copy
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
from strategies.whisper.probe import probe_speech
from strategies.whisper.prompt import whisper_prefix
from strategies.whisper.sampling import sample_decode
from tests.support.engine_checks import (
    check_a_sentence_said_three_times_stays_three_times,
    check_longest_prompt_leaves_room_to_transcribe,
    check_prompt_ids_are_the_keywords_then_the_prompts_last_tokens, longest_prompt,
    batched_and_alone, check_token_logprobs, keyword_changes, late_start, results_together_and_alone, transcribe_whole,
)
from tests.support.audio import JFK_PHRASE, said_three_times


@pytest.fixture(scope="module")
def lite_engine(lite_asr_dirs: tuple[Path, Path]):
    model_dir, processor_dir = lite_asr_dirs
    spec = ModelSpec(
        id="lite", engine="remote_code", model=str(model_dir), processor=str(processor_dir), trust_remote_code=True
    )
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    engine.load()
    yield engine
    engine.unload()


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
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    with pytest.raises(Exception, match="trust_remote_code"):
        engine.load()
    assert not engine.is_loaded
    assert torch.get_num_threads() >= 1


def test_batched_and_unbatched_decoding_give_the_same_text(lite_engine, english_short):
    together, alone = batched_and_alone(lite_engine, english_short)
    assert all(together) and together == alone


# ---------------------------------------------------------------- Whisper's temperature fallback


def _speech_clips(english_short, count: int = 2) -> list:
    return [decode_audio(u.path) for u in english_short[:count]]


def _shares_most_words(text: str, reference: str | None) -> bool:
    words = set(normalize(reference or "").split())
    return len(set(normalize(text).split()) & words) > len(words) // 2


def test_the_sampling_decoder_at_temperature_0_writes_what_generate_writes(lite_engine, english_short):
    """The fallback decoder applies the token rules generate applies: at temperature 0 it writes, token for
    token, what the model's own generate writes."""
    engine = lite_engine
    clips = _speech_clips(english_short, 3)
    features = engine._features(clips)
    probe = probe_speech(engine._model, engine._generation_config, features)
    prefixes = [whisper_prefix(engine._generation_config, None)] * len(clips)
    generators = [torch.Generator().manual_seed(0) for _ in clips]
    looped = sample_decode(engine._model, engine._generation_config, probe.encoder_states, prefixes, 0.0, generators)
    engine._model.generation_config = copy.deepcopy(engine._generation_config)
    with torch.inference_mode():
        generated = engine._model.generate(features)
    pad = engine._generation_config.pad_token_id
    assert [d.tokens for d in looped] == [row[row != pad].tolist() for row in generated]
    assert all(-1.0 < d.avg_logprob < 0 for d in looped)


def test_sampling_draws_from_a_seeded_generator(lite_engine, jfk_audio):
    engine = lite_engine
    features = engine._features([jfk_audio])
    states = probe_speech(engine._model, engine._generation_config, features).encoder_states
    prefixes = [whisper_prefix(engine._generation_config, None)]

    def sampled(seed: int) -> list[int]:
        generators = [torch.Generator().manual_seed(seed)]
        return sample_decode(engine._model, engine._generation_config, states, prefixes, 1.0, generators)[0].tokens

    assert sampled(0) == sampled(0)
    assert sampled(0) != sampled(1)


def test_a_clip_failing_its_first_decoding_is_decoded_again_at_the_next_temperature(
    lite_engine, english_short, monkeypatch
):
    """Only the failing clip is decoded again, at 0.2; the clip that passed at 0 keeps its greedy decoding."""
    from strategies.whisper import fallback

    clips = _speech_clips(english_short)
    greedy = [lite_engine.transcribe_clips([clip], TranscribeOptions())[0] for clip in clips]
    scored = fallback.forced_average_logprob
    calls = iter(range(len(clips)))
    # The first clip's greedy decoding fails the log-prob check (-1.0); the second's is scored as it is.
    monkeypatch.setattr(
        fallback,
        "forced_average_logprob",
        lambda *args: -3.0 if next(calls) == 0 else scored(*args),
    )
    sampled_batches: list[tuple[float, int]] = []
    sample = fallback.sample_decode

    def spy(model, config, states, prefixes, temperature, generators):
        sampled_batches.append((temperature, len(prefixes)))
        return sample(model, config, states, prefixes, temperature, generators)

    monkeypatch.setattr(fallback, "sample_decode", spy)
    first, second = lite_engine.transcribe_clips(clips, TranscribeOptions())
    assert sampled_batches == [(0.2, 1)]
    assert first.segments and {s.temperature for s in first.segments} == {0.2}
    assert _shares_most_words(first.text, english_short[0].text)
    assert second.model_dump() == greedy[1].model_dump() and {s.temperature for s in second.segments} == {0.0}


def test_a_clip_failing_at_every_temperature_keeps_the_attempt_missing_the_checks_by_the_least(
    lite_engine, jfk_audio, monkeypatch
):
    from strategies.whisper import fallback
    from strategies.whisper.sampling import SampledDecoding

    [greedy] = lite_engine.transcribe_clips([jfk_audio], TranscribeOptions())
    monkeypatch.setattr(fallback, "forced_average_logprob", lambda *args: -3.0)
    timestamp = lite_engine._generation_config.no_timestamps_token_id + 1
    loop = [timestamp, *[464, 1748] * 100]  # " The" "ory" ... a repetition loop, whatever its log-prob
    logprobs = {0.2: -1.6, 0.4: -1.2, 0.6: -1.05, 0.8: -1.4, 1.0: -2.0}
    temperatures: list[float] = []

    greedy_tokens = lite_engine._processor.tokenizer(" " + greedy.text, add_special_tokens=False).input_ids

    def fake_sample(model, config, states, prefixes, temperature, generators):
        temperatures.append(temperature)
        tokens = loop if temperature == 0.6 else greedy_tokens
        return [SampledDecoding(tokens=tokens, avg_logprob=logprobs[temperature])]

    monkeypatch.setattr(fallback, "sample_decode", fake_sample)
    [result] = lite_engine.transcribe_clips([jfk_audio], TranscribeOptions())
    assert temperatures == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert {s.temperature for s in result.segments} == {0.4}, "the loop at 0.6 is likelier, but it loops"
    assert normalize(result.text) == normalize(greedy.text)


def test_a_request_temperature_samples_from_the_first_decoding_reproducibly(lite_engine, english_short, monkeypatch):
    clips = _speech_clips(english_short)

    def no_generate(*args, **kwargs):
        raise AssertionError("a temperature above 0 is sampled, generate only decodes greedily")

    options = TranscribeOptions(temperature=0.4)
    first = [r.model_dump() for r in lite_engine.transcribe_clips(clips, options)]
    monkeypatch.setattr(lite_engine._model, "generate", no_generate)
    again = [r.model_dump() for r in lite_engine.transcribe_clips(clips, options)]
    assert first == again
    for result, utterance in zip(first, english_short):
        assert result["segments"] and all(s["temperature"] >= 0.4 for s in result["segments"])
        assert _shares_most_words(result["text"], utterance.text)


# ---------------------------------------------------------------- batch independence


@pytest.mark.parametrize("temperature", [None, 0.6], ids=["greedy", "sampled at 0.6"])
def test_times_do_not_depend_on_the_other_clips_in_the_batch(lite_engine, jfk_audio, english_short, temperature):
    """Segment times come from the clip's own timestamp tokens; sampled clips draw from their own generators."""
    clips = [*_speech_clips(english_short, 3), late_start(jfk_audio)]
    together, alone = results_together_and_alone(lite_engine, clips, TranscribeOptions(temperature=temperature))
    assert all(result["segments"] for result in alone)
    assert together == alone


def test_token_logprobs_spell_the_segments_and_leave_the_text_alone(lite_engine, jfk_audio):
    check_token_logprobs(lite_engine, jfk_audio)


def test_a_keyword_brings_a_rare_name_into_the_transcript(lite_engine, corpus_dir):
    """The model's generate takes no prompt: a prompted decoding is greedy through plain decoder passes."""
    audio = decode_audio(corpus_dir / "en" / "ls_to_2033-164914-0008.flac")
    plain, biased = keyword_changes(lite_engine, audio, "eunuch")
    assert "eunuch" not in plain and "eunuch" in biased


def test_a_prompt_is_read_as_its_last_223_tokens_after_the_keywords_and_as_text(lite_engine):
    check_prompt_ids_are_the_keywords_then_the_prompts_last_tokens(lite_engine)


def test_the_longest_prompt_leaves_room_to_transcribe(lite_engine, jfk_audio):
    assert JFK_PHRASE in check_longest_prompt_leaves_room_to_transcribe(lite_engine, jfk_audio)


def test_a_sentence_said_three_times_comes_back_three_times_with_or_without_a_prompt(lite_engine, jfk_audio):
    check_a_sentence_said_three_times_stays_three_times(lite_engine, said_three_times(jfk_audio))
