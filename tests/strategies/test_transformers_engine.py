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
from tests.engine_checks import batched_and_alone, transcribe_whole
from tests.conftest import JFK_PHRASE

# "About as well as the ctranslate2 engine": the same weights, beam search in fp32 against beam search in int8.
MAX_WER_GAP_TO_CTRANSLATE2 = 0.03


def _load(spec: ModelSpec):
    strategy = create_engine(spec, RuntimeContext("cpu", HubAccess()))
    strategy.load()
    return strategy


@pytest.fixture(scope="module")
def hf_engine(hf_tiny_en_dir: Path):
    strategy = _load(ModelSpec(id="tiny-en-hf", engine="transformers", model=str(hf_tiny_en_dir)))
    yield strategy
    strategy.unload()


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
    prompted = transcribe_whole(hf_engine, jfk_audio, TranscribeOptions(initial_prompt="President Kennedy's inaugural."))
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
