"""Shared by the engine tests: whole files through the pipeline's long-form path, and batched decoding
checked against decoding each clip alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bench.corpus import Utterance, normalize
from core.audio import SAMPLE_RATE, decode_audio
from core.types import Transcription, TranscribeOptions
from pipeline.capabilities import pin_language
from pipeline.longform import transcribe_long
from pipeline.preparation import MAX_PROMPT_BYTES
from strategies.base import ASREngine


def transcribe_whole(
    engine: ASREngine, audio: np.ndarray, options: TranscribeOptions, batch_size: int = 8
) -> Transcription:
    """Audio of any length through one engine, as the service runs it: one language, clips in batches."""
    return transcribe_long(audio, pin_language(engine, audio, options), engine.transcribe_clips, batch_size)


def batched_and_alone(engine: ASREngine, utterances: list[Utterance], count: int = 6) -> tuple[list[str], list[str]]:
    """Texts of ``count`` corpus clips of different lengths decoded together, then one at a time."""
    chosen = sorted(utterances, key=lambda u: u.duration_s)[:: max(len(utterances) // count, 1)][:count]
    clips = [decode_audio(u.path) for u in chosen]
    options = TranscribeOptions()
    together = [result.text for result in engine.transcribe_clips(clips, options)]
    alone = [engine.transcribe_clips([clip], options)[0].text for clip in clips]
    return together, alone


def late_start(speech: np.ndarray, silence_s: float = 2.5, speech_s: float = 8.0) -> np.ndarray:
    """``speech_s`` seconds of speech after ``silence_s`` seconds of digital silence."""
    silence = np.zeros(int(silence_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([silence, speech[: int(speech_s * SAMPLE_RATE)]])


def results_together_and_alone(
    engine: ASREngine, clips: Sequence[np.ndarray], options: TranscribeOptions
) -> tuple[list[dict], list[dict]]:
    """Every field of each clip's result (``model_dump``) decoded in one batch, then one clip at a time."""
    together = [result.model_dump() for result in engine.transcribe_clips(clips, options)]
    alone = [engine.transcribe_clips([clip], options)[0].model_dump() for clip in clips]
    return together, alone


def check_token_logprobs(engine: ASREngine, audio: np.ndarray) -> list[float]:
    """Asking for token log-probabilities leaves the transcript as it was; each segment's tokens spell its text
    and every log-probability is finite and at most 0. Returns them all."""
    plain = transcribe_whole(engine, audio, TranscribeOptions())
    scored = transcribe_whole(engine, audio, TranscribeOptions(logprobs=True))
    assert scored.text == plain.text and scored.segments
    values = []
    for segment in scored.segments:
        assert segment.logprobs, segment
        spelled = b"".join(bytes(t.bytes) for t in segment.logprobs).decode()
        assert spelled.strip() == segment.text.strip()
        assert all(t.token == bytes(t.bytes).decode("utf-8", errors="replace") for t in segment.logprobs)
        values += [t.logprob for t in segment.logprobs]
    assert all(-100 < v <= 0 for v in values)
    return values


def keyword_changes(engine: ASREngine, audio: np.ndarray, keyword: str) -> tuple[str, str]:
    """The normalised transcript without, then with, ``keyword`` given."""
    plain = transcribe_whole(engine, audio, TranscribeOptions())
    biased = transcribe_whole(engine, audio, TranscribeOptions(keywords=(keyword,)))
    return normalize(plain.text), normalize(biased.text)


SPECIAL_NAMES = "<|endoftext|> <|notimestamps|>"
"""Whisper's control tokens by name, as a prompt may hold them: text to read, never tokens to obey."""


def longest_prompt() -> str:
    """A prompt of ``MAX_PROMPT_BYTES``, the most a request may send (about 3,500 tokens), ending on the subject of the
    JFK clip."""
    end = " President Kennedy's inaugural address."
    filler = "The minutes of the last meeting were read and approved without changes. " * 300
    return filler[: MAX_PROMPT_BYTES - len(end)] + end


def check_prompt_ids_are_the_keywords_then_the_prompts_last_tokens(engine: ASREngine) -> None:
    """A transformers-tokenizer engine's prompt ids: ``<|startofprev|>``, the keywords, then the end of the prompt,
    223 tokens in all after the start; special tokens' names in a prompt are read as text."""
    tokenizer = engine._processor.tokenizer  # type: ignore[attr-defined]
    start = tokenizer.convert_tokens_to_ids("<|startofprev|>")
    options = TranscribeOptions(initial_prompt=longest_prompt(), keywords=("Kennedy",))
    ids = engine._prompt_ids(options)  # type: ignore[attr-defined]
    assert ids[0] == start and len(ids) == 1 + 223
    keyword = tokenizer(" Kennedy", add_special_tokens=False).input_ids
    assert ids[1 : 1 + len(keyword)] == keyword  # the keywords first, then the end of the prompt
    assert ids[1 + len(keyword) :] == tokenizer(" " + longest_prompt(), add_special_tokens=False).input_ids[
        -(223 - len(keyword)) :
    ]
    special = engine._prompt_ids(TranscribeOptions(initial_prompt=SPECIAL_NAMES))[1:]  # type: ignore[attr-defined]
    assert all(token < tokenizer.eos_token_id for token in special)
    assert tokenizer.decode(special) == " " + SPECIAL_NAMES


def check_longest_prompt_leaves_room_to_transcribe(engine: ASREngine, audio: np.ndarray) -> str:
    """The JFK clip under the longest prompt a request may send: only its last 223 tokens are read, so the decoding
    keeps the room it needs (a prompt of thousands of tokens fails or leaves none). Returns the transcript."""
    result = transcribe_whole(engine, audio, TranscribeOptions(initial_prompt=longest_prompt(), keywords=("Kennedy",)))
    return normalize(result.text)


def check_sampling_is_reproducible(engine: ASREngine, clips: Sequence[np.ndarray]) -> None:
    """Clips sampled from the start (temperature 0.6) give the same result every time, batched or alone; a
    request's ``seed`` replaces each clip's own, alike every time, and another seed draws another decoding."""
    options = TranscribeOptions(temperature=0.6)
    together, alone = results_together_and_alone(engine, clips, options)
    assert all(result["segments"] for result in together)
    assert {s["temperature"] for result in together for s in result["segments"]} >= {0.6}
    assert together == alone
    assert [r.model_dump() for r in engine.transcribe_clips(clips, options)] == together
    seeded = [replace(options, seed=seed, temperature=1.0) for seed in (7, 7, 8)]
    first, again, other = ([r.text for r in engine.transcribe_clips(clips, o)] for o in seeded)
    assert first == again and first != other


def check_a_sentence_said_three_times_stays_three_times(engine: ASREngine, audio: np.ndarray) -> None:
    """With or without a prompt, the sentence comes back as often as it is said, and the same every time (the
    prompted first window falls back to sampling: a sampled decoding that adds a repetition must not win)."""
    for prompt in (None, "A presidential inaugural address."):
        options = TranscribeOptions(initial_prompt=prompt)
        text = transcribe_whole(engine, audio, options).text
        assert normalize(text).count("ask not what your country") == 3, (prompt, text)
        assert transcribe_whole(engine, audio, options).text == text
