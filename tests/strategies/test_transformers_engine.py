"""The transformers engine on real weights: tiny.en converted to a Hugging Face checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import normalize, word_error_rate
from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from strategies.base import RuntimeContext
from strategies.factory import create_engine
from tests.support.engine_checks import (
    batched_and_alone,
    check_a_sentence_said_three_times_stays_three_times,
    check_sampling_is_reproducible,
    check_longest_prompt_leaves_room_to_transcribe,
    check_prompt_ids_are_the_keywords_then_the_prompts_last_tokens,
    check_token_logprobs,
    keyword_changes,
    late_start,
    longest_prompt,
    results_together_and_alone,
    transcribe_whole,
)
from tests.support.audio import JFK_PHRASE, said_three_times

# "About as well as the ctranslate2 engine": the same weights, beam search in fp32 against beam search in int8.
MAX_WER_GAP_TO_CTRANSLATE2 = 0.03


def _load(spec: ModelSpec):
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def hf_engine(hf_tiny_en_dir: Path):
    engine = _load(ModelSpec(id="tiny-en-hf", engine="transformers", model=str(hf_tiny_en_dir)))
    yield engine
    engine.unload()


def test_pipeline_uses_fp32_on_cpu_and_knows_it_is_english_only(hf_engine):
    import torch

    assert hf_engine._pipe.model.dtype == torch.float32
    assert not hf_engine.is_multilingual


def test_transcribes_with_segment_timestamps(hf_engine, jfk_audio):
    result = transcribe_whole(hf_engine, jfk_audio, TranscribeOptions(language="en"))
    assert JFK_PHRASE in normalize(result.text)
    assert result.language == "en" and result.duration == pytest.approx(11.0, abs=0.05)
    assert len(result.segments) >= 2
    assert all(0 <= s.start < s.end <= result.duration for s in result.segments)
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)


def test_word_timestamps(hf_engine, jfk_audio):
    result = transcribe_whole(hf_engine, jfk_audio, TranscribeOptions(word_timestamps=True))
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 20
    assert JFK_PHRASE in normalize(" ".join(w.word for w in words))
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.start <= w.end <= result.duration + 0.05 for w in words)


def test_initial_prompt_and_sampling_temperature(hf_engine, jfk_audio):
    options = TranscribeOptions(initial_prompt="President Kennedy's inaugural.")
    prompted = transcribe_whole(hf_engine, jfk_audio, options)
    assert JFK_PHRASE in normalize(prompted.text)
    assert "inaugural" not in normalize(prompted.text), "the prompt conditions decoding but is not part of the output"
    sampled = transcribe_whole(hf_engine, jfk_audio, TranscribeOptions(temperature=0.2))
    assert "country" in normalize(sampled.text)


def test_long_audio_is_chunked_not_truncated(hf_engine, long_concat):
    result = transcribe_whole(hf_engine, decode_audio(long_concat.path), TranscribeOptions())
    assert result.duration > 100 and result.segments[-1].end > 90
    # Neither truncated nor looping: the word count stays close to the reference's.
    reference_words = len(normalize(long_concat.text).split())
    assert 0.85 * reference_words <= len(normalize(result.text).split()) <= 1.15 * reference_words


def test_corpus_wer_is_about_that_of_the_ctranslate2_engine(hf_engine, english_short):
    ct2 = _load(ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en"))
    references, from_hf, from_ct2 = [], [], []
    for utterance in english_short:
        audio = decode_audio(utterance.path)
        references.append(utterance.text)
        from_hf.append(transcribe_whole(hf_engine, audio, TranscribeOptions()).text)
        from_ct2.append(transcribe_whole(ct2, audio, TranscribeOptions()).text)
    ct2.unload()
    hf_wer, ct2_wer = word_error_rate(references, from_hf), word_error_rate(references, from_ct2)
    print(f"WER over {len(references)} utterances: transformers {hf_wer:.4f}, ctranslate2 {ct2_wer:.4f}")
    assert hf_wer <= ct2_wer + MAX_WER_GAP_TO_CTRANSLATE2


def test_batched_and_unbatched_decoding_give_the_same_text(hf_engine, english_short):
    together, alone = batched_and_alone(hf_engine, english_short)
    assert all(together) and together == alone


def test_word_and_segment_times_do_not_depend_on_the_other_clips_in_the_batch(hf_engine, jfk_audio, english_short):
    """In a batch, transformers' generate time-warped a clip's cross-attention together with rows for the steps
    after the clip's end: the words of the late-starting clip all collapsed onto 5.38 s next to longer clips."""
    clips = [*(decode_audio(u.path) for u in english_short[:3]), late_start(jfk_audio)]
    together, alone = results_together_and_alone(hf_engine, clips, TranscribeOptions(word_timestamps=True))
    # transformers starts a word where the token before it ends: the first word spans the leading silence.
    assert alone[-1]["segments"][0]["words"][1]["start"] >= 2.5, "the words come after the silence"
    assert together == alone


def _attention_implementations(model) -> set[str]:
    return {module.config._attn_implementation for module in model.modules() if hasattr(module, "config")}


def test_word_timestamps_leave_the_model_on_its_fast_attention(hf_engine, jfk_audio, monkeypatch):
    """transformers' generate switches the model to eager attention for good when asked for token timestamps;
    the engine aligns words with eager attention for that one pass only, and decodes with sdpa."""
    model = hf_engine._pipe.model
    assert _attention_implementations(model) == {"sdpa"}
    seen: list[set[str]] = []
    generate = model.generate

    def spy(*args, **kwargs):
        seen.append(_attention_implementations(model))
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    before = hf_engine.transcribe_clips([jfk_audio], TranscribeOptions())[0]
    [with_words] = hf_engine.transcribe_clips([jfk_audio], TranscribeOptions(word_timestamps=True))
    assert len([w for s in with_words.segments for w in s.words]) >= 20
    assert _attention_implementations(model) == {"sdpa"}
    after = hf_engine.transcribe_clips([jfk_audio], TranscribeOptions())[0]
    assert after.model_dump() == before.model_dump() and JFK_PHRASE in normalize(after.text)
    assert seen == [{"sdpa"}] * 3


def test_token_logprobs_spell_the_segments_and_leave_the_text_alone(hf_engine, jfk_audio):
    values = check_token_logprobs(hf_engine, jfk_audio)
    assert sum(values) / len(values) > -0.5  # clear speech the model gets right: likely tokens


def test_a_keyword_brings_a_rare_name_into_the_transcript(hf_engine, corpus_dir):
    audio = decode_audio(corpus_dir / "en" / "ls_to_2414-128291-0002.flac")
    plain, biased = keyword_changes(hf_engine, audio, "Zarathustra")
    assert "zarathustra" not in plain and "zarathustra" in biased


def test_a_prompt_is_read_as_its_last_223_tokens_after_the_keywords_and_as_text(hf_engine):
    check_prompt_ids_are_the_keywords_then_the_prompts_last_tokens(hf_engine)


def test_the_longest_prompt_leaves_room_to_transcribe(hf_engine, jfk_audio):
    assert JFK_PHRASE in check_longest_prompt_leaves_room_to_transcribe(hf_engine, jfk_audio)


def test_sampling_is_reproducible_alone_or_batched_and_a_seed_replaces_the_clips_own(
    hf_engine, jfk_audio, english_short
):
    check_sampling_is_reproducible(hf_engine, [decode_audio(u.path) for u in english_short[:2]] + [jfk_audio])


def test_a_sentence_said_three_times_comes_back_three_times_with_or_without_a_prompt(hf_engine, jfk_audio):
    check_a_sentence_said_three_times_stays_three_times(hf_engine, said_three_times(jfk_audio))
