from __future__ import annotations

import numpy as np
import pytest

from bench.corpus import normalize
from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from strategies.base import RuntimeContext
from strategies.factory import create_engine
from tests.support.engine_checks import (
    SPECIAL_NAMES,
    batched_and_alone,
    check_a_sentence_said_three_times_stays_three_times,
    check_longest_prompt_leaves_room_to_transcribe,
    check_sampling_is_reproducible,
    check_token_logprobs,
    keyword_changes,
    longest_prompt,
    transcribe_whole,
)
from tests.support.audio import JFK_PHRASE, said_three_times


@pytest.fixture(scope="module")
def tiny_en():
    spec = ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en")
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    engine.load()
    yield engine
    engine.unload()


def test_embedded_model_transcribes_real_speech(tiny_en, jfk_audio):
    result = transcribe_whole(tiny_en, jfk_audio, TranscribeOptions())
    assert JFK_PHRASE in normalize(result.text)
    assert result.language == "en" and result.duration == pytest.approx(11.0, abs=0.05)
    assert not tiny_en.is_multilingual
    first = result.segments[0]
    assert first.id == 0 and first.tokens and first.avg_logprob is not None and first.no_speech_prob is not None


def test_word_timestamps_are_monotonic_and_inside_their_segment(tiny_en, jfk_audio):
    result = transcribe_whole(tiny_en, jfk_audio, TranscribeOptions(word_timestamps=True))
    previous_end = 0.0
    for segment in result.segments:
        assert segment.words
        for word in segment.words:
            assert segment.start - 0.01 <= word.start <= word.end <= segment.end + 0.01
            assert word.start >= previous_end - 0.01
            previous_end = word.end


def test_prompt_and_fixed_temperature_are_accepted(tiny_en, jfk_audio):
    options = TranscribeOptions(initial_prompt="Kennedy inaugural address.", temperature=0.0)
    result = transcribe_whole(tiny_en, jfk_audio, options)
    assert JFK_PHRASE in normalize(result.text)


def test_a_prompt_is_read_as_its_last_223_tokens_after_the_keywords_and_as_text(tiny_en):
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(tiny_en._model.hf_tokenizer, False, task="transcribe", language="en")
    options = TranscribeOptions(initial_prompt=longest_prompt(), keywords=("Kennedy",))
    [prompt] = tiny_en._prompts([tokenizer], options)
    assert prompt[0] == tokenizer.sot_prev and prompt.index(tokenizer.sot) == 1 + 223
    assert prompt[1:2] == tokenizer.encode(" Kennedy")  # the keywords first, then the end of the prompt
    assert prompt[2:224] == tokenizer.encode(" " + longest_prompt())[-222:]
    [special] = tiny_en._prompts([tokenizer], TranscribeOptions(initial_prompt=SPECIAL_NAMES))
    previous = special[1 : special.index(tokenizer.sot)]
    assert all(token < tokenizer.eot for token in previous) and tokenizer.decode(previous) == " " + SPECIAL_NAMES


def test_the_longest_prompt_leaves_room_to_transcribe(tiny_en, jfk_audio):
    assert JFK_PHRASE in check_longest_prompt_leaves_room_to_transcribe(tiny_en, jfk_audio)


def test_unload_releases_the_model(jfk_audio):
    spec = ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en")
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    engine.load()
    assert engine.is_loaded
    engine.unload()
    assert not engine.is_loaded


def test_batched_and_unbatched_decoding_give_the_same_text(tiny_en, english_short):
    together, alone = batched_and_alone(tiny_en, english_short)
    assert all(together) and together == alone


def test_a_temperature_above_zero_samples(tiny_en, jfk_audio):
    [result] = tiny_en.transcribe_clips([jfk_audio], TranscribeOptions(temperature=0.2))
    assert result.segments and all(s.temperature == 0.2 for s in result.segments)
    assert JFK_PHRASE.split()[-1] in normalize(result.text)


def _noise(seconds: float, level_dbfs: float, peak: bool = False) -> np.ndarray:
    """Seeded white noise, scaled so that its RMS (or its peak) sits at ``level_dbfs``."""
    samples = np.random.default_rng(0).standard_normal(int(seconds * 16_000))
    scale = np.abs(samples).max() if peak else np.sqrt(np.mean(samples**2))
    return (samples / scale * 10 ** (level_dbfs / 20)).astype(np.float32)


@pytest.mark.parametrize(
    "audio",
    [_noise(20, -40), _noise(3, -59, peak=True)],
    ids=["20 s of white noise at -40 dBFS", "3 s of white noise peaking at -59 dBFS"],
)
def test_noise_yields_no_invented_text(tiny_en, audio):
    """Without Whisper's no-speech and fallback checks the batched decoder wrote '. . . .' and 'You' here."""
    [result] = tiny_en.transcribe_clips([audio], TranscribeOptions())
    assert result.text == "" and result.segments == []


def test_times_do_not_depend_on_the_other_clips_in_the_batch(tiny_en, jfk_audio, english_short):
    late_start = np.concatenate([np.zeros(int(2.5 * 16_000), dtype=np.float32), jfk_audio[: 16_000 * 8]])
    others = [decode_audio(u.path) for u in english_short[:3]]
    options = TranscribeOptions(word_timestamps=True)
    [alone] = tiny_en.transcribe_clips([late_start], options)
    *_, batched = tiny_en.transcribe_clips([*others, late_start], options)
    assert alone.segments[0].words[0].start >= 2.0, "the first word comes after the silence"
    assert batched.model_dump() == alone.model_dump()


def test_on_cpu_each_core_gets_a_worker_of_one_thread_and_they_run_at_once(jfk_audio, english_short):
    from concurrent.futures import ThreadPoolExecutor

    spec = ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en")
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess(), cpu_cores=2))
    assert engine.workers == 2
    engine.load()
    try:
        assert engine._model.model.num_workers == 2
        clips = [decode_audio(u.path) for u in english_short[:4]]
        alone = [engine.transcribe_clips([clip], TranscribeOptions())[0].text for clip in clips]
        with ThreadPoolExecutor(2) as threads:
            together = list(threads.map(lambda c: engine.transcribe_clips([c], TranscribeOptions())[0].text, clips))
        assert together == alone
    finally:
        engine.unload()
    assert create_engine(spec, RuntimeContext("cuda", HubAccess(), cpu_cores=16)).workers == 1
    assert create_engine(spec, RuntimeContext("cpu", HubAccess(), cpu_cores=16, engine_workers=3)).workers == 3
    # A worker's one thread decodes clips one by one as fast as in a batch: parallel workers are the CPU's lever,
    # batches the GPU's.
    assert create_engine(spec, RuntimeContext("cpu", HubAccess(), cpu_cores=2)).batch_size == 1
    assert create_engine(spec, RuntimeContext("cuda", HubAccess())).batch_size == 8


def test_token_logprobs_spell_the_segments_and_are_the_word_probabilities(tiny_en, jfk_audio):
    check_token_logprobs(tiny_en, jfk_audio)
    # faster-whisper's word probability is the mean probability of the word's tokens in the same alignment pass:
    # a word of one token has exactly its token's probability.
    result = transcribe_whole(tiny_en, jfk_audio, TranscribeOptions(logprobs=True, word_timestamps=True))
    single = 0
    for segment in result.segments:
        tokens = iter(segment.logprobs)
        for word in segment.words:
            spelled = [next(tokens)]
            while "".join(t.token for t in spelled) != word.word:
                spelled.append(next(tokens))
            if len(spelled) == 1:
                single += 1
                assert np.exp(spelled[0].logprob) == pytest.approx(word.probability, abs=2e-3), word
    assert single >= 10


def test_a_keyword_brings_a_rare_name_into_the_transcript(tiny_en, corpus_dir):
    audio = decode_audio(corpus_dir / "en" / "ls_to_2414-128291-0002.flac")
    plain, biased = keyword_changes(tiny_en, audio, "Zarathustra")
    assert "zarathustra" not in plain and "zarathustra" in biased


def test_sampling_is_reproducible_alone_or_batched_and_a_seed_replaces_the_clips_own(tiny_en, jfk_audio, english_short):
    check_sampling_is_reproducible(tiny_en, [decode_audio(u.path) for u in english_short[:2]] + [jfk_audio])


def test_a_sentence_said_three_times_comes_back_three_times_with_or_without_a_prompt(tiny_en, jfk_audio):
    check_a_sentence_said_three_times_stays_three_times(tiny_en, said_three_times(jfk_audio))
