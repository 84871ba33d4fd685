"""Pieces shared by the torch-based engines: precision, Whisper decoding options and safeguards, module
sizes."""

from __future__ import annotations

import math
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from core.registry import ModelSpec
from core.types import Segment, TokenLogprob, Word

from .safeguards import LOG_PROB_THRESHOLD, NO_SPEECH_THRESHOLD, temperature_schedule
from .token_logprobs import token_logprobs

_SENTENCE_END = re.compile(r"[.!?…。？！]$")


# OpenAI Whisper's safeguards.  Temperature fallback: a decoding whose compression ratio or average log
# probability fails its threshold is decoded again at the next temperature.  No-speech: output whose
# no-speech probability is above NO_SPEECH_THRESHOLD while its average log-prob is below LOGPROB_THRESHOLD is
# dropped.  transformers' compression ratio is zlib on token ids, for which 1.35 plays OpenAI's 2.4 on text.
TEMPERATURES = tuple(temperature_schedule(0.0))
COMPRESSION_RATIO_THRESHOLD = 1.35
LOGPROB_THRESHOLD = LOG_PROB_THRESHOLD


def prompt_text(keywords: Sequence[str], initial_prompt: str | None) -> str | None:
    """The text Whisper reads as previous context: the keywords, comma-separated (as faster-whisper's hotwords, put
    before the prompt), then the request's prompt; None when there is neither."""
    text = " ".join(part for part in (", ".join(keywords), initial_prompt or "") if part.strip())
    return text or None


def language_setting(languages: Sequence[str]) -> str | list[str]:
    """Whisper generate's ``language``: one code for the whole batch, or one per clip when they differ."""
    return languages[0] if len(set(languages)) == 1 else list(languages)


@dataclass(frozen=True)
class SpeechProbe:
    """Whisper's first decoding step for each clip of a batch: what follows <|startoftranscript|>."""

    no_speech_probs: list[float]
    languages: list[str | None]
    """The most likely language token of each clip, as a code (``"pt"``); None for English-only models."""
    encoder_states: torch.Tensor
    """The encoder's output for the batch, for further decoder passes without encoding again."""
    language_probs: list[float | None] = field(default_factory=list)
    """The probability of each clip's language among the language tokens (as Whisper's ``detect_language``)."""


def probe_speech(
    model: Any, generation_config: Any, features: torch.Tensor, prompt_ids: Sequence[int] = ()
) -> SpeechProbe:
    """One forward pass (encoder, then one decoder step over ``prompt_ids + <|startoftranscript|>``) for a
    batch of log-mel features: each clip's no-speech probability, as Whisper computes it at the
    start-of-transcript position, and its most likely language among ``generation_config.lang_to_id``.

    A plain ``model(...)`` call, so it works on custom architectures whose ``generate`` takes no extra argument.
    """
    prefix = [*prompt_ids, generation_config.decoder_start_token_id]
    decoder_input_ids = torch.tensor([prefix] * features.shape[0], dtype=torch.long, device=features.device)
    with torch.inference_mode():
        output = model(input_features=features, decoder_input_ids=decoder_input_ids, use_cache=False)
    probs = output.logits[:, -1].float().softmax(dim=-1)
    # <|nospeech|> (<|nocaptions|> in older vocabularies) sits just before <|notimestamps|>, as transformers assumes.
    no_speech = probs[:, generation_config.no_timestamps_token_id - 1]
    lang_to_id: dict[str, int] | None = getattr(generation_config, "lang_to_id", None)
    if getattr(generation_config, "is_multilingual", True) and lang_to_id:
        tokens = list(lang_to_id)
        language_logits = output.logits[:, -1, [lang_to_id[t] for t in tokens]].float()
        best_probs, best = language_logits.softmax(dim=-1).max(dim=-1)
        languages: list[str | None] = [tokens[i].strip("<|>") for i in best.tolist()]
        language_probs: list[float | None] = best_probs.tolist()
    else:
        languages = [None] * features.shape[0]
        language_probs = [None] * features.shape[0]
    return SpeechProbe(
        no_speech_probs=no_speech.tolist(),
        languages=languages,
        encoder_states=output.encoder_last_hidden_state,
        language_probs=language_probs,
    )


def whisper_prefix(generation_config: Any, language: str | None, task: str = "transcribe") -> list[int]:
    """The tokens Whisper's generate starts a timestamped decoding with: <|startoftranscript|>, then for
    multilingual models the language and the task."""
    prefix = [generation_config.decoder_start_token_id]
    if language is not None:
        prefix += [generation_config.lang_to_id[f"<|{language}|>"], generation_config.task_to_id[task]]
    return prefix


def whisper_token_rules(generation_config: Any, begin_index: int, device: torch.device | str) -> Any:
    """Whisper generate's logits processors, in its order, for a decoding whose first ``begin_index``
    tokens are its prefix: ``begin_suppress_tokens`` at the first step, ``suppress_tokens`` always, and the
    timestamp rules when ``return_timestamps`` is set."""
    # Imported here: importing this module needs no transformers until a decoding runs.
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        SuppressTokensAtBeginLogitsProcessor,
        SuppressTokensLogitsProcessor,
        WhisperTimeStampLogitsProcessor,
    )

    rules = LogitsProcessorList()
    if generation_config.begin_suppress_tokens:
        rules.append(
            SuppressTokensAtBeginLogitsProcessor(generation_config.begin_suppress_tokens, begin_index, device=device)
        )
    if generation_config.suppress_tokens:
        rules.append(SuppressTokensLogitsProcessor(generation_config.suppress_tokens, device=device))
    if generation_config.return_timestamps:
        rules.append(WhisperTimeStampLogitsProcessor(generation_config, begin_index=begin_index))
    return rules


def _decoder_pass(model: Any, encoder_states: torch.Tensor, decoder_input_ids: torch.Tensor, **kwargs: Any) -> Any:
    """A plain forward pass of the model on encoder states computed before: the decoder alone runs."""
    from transformers.modeling_outputs import BaseModelOutput

    encoder_outputs = BaseModelOutput(last_hidden_state=encoder_states)
    return model(encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids, **kwargs)


def forced_token_logprobs(
    model: Any, generation_config: Any, encoder_states: torch.Tensor, prefix: Sequence[int], token_ids: Sequence[int]
) -> list[float]:
    """The log-probability of each token of a decoding of one clip, recomputed in one teacher-forced forward
    pass after ``prefix`` over the clip's encoder states: the log-probabilities generate's scores give, after
    Whisper's token rules (whisper_token_rules), at temperature 1. Tokens past the model's positions are left out."""
    limit = model.config.max_target_positions
    tokens = list(token_ids)[: limit - len(prefix)]
    if not tokens:
        return []
    sequence = torch.tensor([[*prefix, *tokens]], dtype=torch.long, device=encoder_states.device)
    rules = whisper_token_rules(generation_config, len(prefix), encoder_states.device)
    with torch.inference_mode():
        logits = _decoder_pass(model, encoder_states[None], sequence[:, :-1], use_cache=False).logits
        logits = logits[0, len(prefix) - 1 :]
        logprobs = [
            rules(sequence[:, : len(prefix) + step], logits[step : step + 1].float()).log_softmax(dim=-1)[0, token]
            for step, token in enumerate(tokens)
        ]
    return torch.stack(logprobs).tolist()


def forced_average_logprob(
    model: Any, generation_config: Any, encoder_states: torch.Tensor, prefix: Sequence[int], token_ids: Sequence[int]
) -> float:
    """Whisper's average log-probability of a decoding of one clip (end-of-text included in ``token_ids``), from
    forced_token_logprobs."""
    logprobs = forced_token_logprobs(model, generation_config, encoder_states, prefix, token_ids)
    return sum(logprobs) / len(logprobs)


def text_token_logprobs(
    model: Any,
    generation_config: Any,
    tokenizer: Any,
    encoder_states: torch.Tensor,
    prefix: Sequence[int],
    token_ids: Sequence[int],
) -> list[TokenLogprob]:
    """The text tokens of a clip's decoding (``token_ids``: its text and timestamp tokens after ``prefix``) with
    their log-probabilities (forced_token_logprobs); timestamp and other special tokens are scored in context
    but not returned."""
    logprobs = forced_token_logprobs(model, generation_config, encoder_states, prefix, token_ids)
    special = set(tokenizer.all_special_ids)
    first_timestamp = generation_config.no_timestamps_token_id + 1
    kept = [(t, lp) for t, lp in zip(token_ids, logprobs) if t < first_timestamp and t not in special]
    return token_logprobs([t for t, _ in kept], [lp for _, lp in kept], tokenizer.convert_ids_to_tokens)


@dataclass(frozen=True)
class SampledDecoding:
    """One clip's decoding at one temperature, before Whisper's checks."""

    tokens: list[int]
    """Text and timestamp tokens, end-of-text excluded."""
    avg_logprob: float
    """Whisper's average log-probability: over the tokens and the end-of-text token (when the decoding
    reached it), each from the distribution after the token rules, at temperature 1."""


def sample_decode(
    model: Any,
    generation_config: Any,
    encoder_states: torch.Tensor,
    prefixes: Sequence[Sequence[int]],
    temperature: float,
    generators: Sequence[torch.Generator],
) -> list[SampledDecoding]:
    """Decode a batch of clips token by token with plain forward passes (a key-value cache, no
    ``generate``): Whisper's token rules (whisper_token_rules) applied, then the likeliest token at
    temperature 0 and otherwise a token drawn from the softmax at ``temperature`` over the whole vocabulary,
    as OpenAI's Whisper samples.  Each clip draws from its own generator, so its decoding does not depend on
    the other clips of the batch.  The prefixes must be of one length; decodings end at end-of-text or at
    generate's length limit: ``generation_config.max_length`` new tokens, at most the model's positions."""
    device = encoder_states.device
    eos = generation_config.eos_token_id
    begin = len(prefixes[0])
    positions = model.config.max_target_positions
    limit = min((generation_config.max_length or positions) + min(positions // 2 - 1, begin), positions)
    rules = whisper_token_rules(generation_config, begin, device)
    sequences = torch.tensor([list(p) for p in prefixes], dtype=torch.long, device=device)
    done = torch.zeros(len(prefixes), dtype=torch.bool, device=device)
    logprob_sums = torch.zeros(len(prefixes), dtype=torch.float64, device=device)
    step_ids, cache = sequences, None
    with torch.inference_mode():
        while sequences.shape[1] < limit and not bool(done.all()):
            output = _decoder_pass(model, encoder_states, step_ids, past_key_values=cache, use_cache=True)
            cache = output.past_key_values
            scores = rules(sequences, output.logits[:, -1].float())
            chosen = _pick(scores, temperature, generators).masked_fill(done, eos)
            logprobs = scores.log_softmax(dim=-1).gather(-1, chosen[:, None])[:, 0]
            logprob_sums += logprobs.masked_fill(done, 0.0).double()
            done |= chosen == eos
            step_ids = chosen[:, None]
            sequences = torch.cat([sequences, step_ids], dim=1)
    return [_sampled(row[begin:].tolist(), float(total), eos) for row, total in zip(sequences, logprob_sums)]


def _pick(scores: torch.Tensor, temperature: float, generators: Sequence[torch.Generator]) -> torch.Tensor:
    if temperature <= 0:
        return scores.argmax(dim=-1)
    probs = (scores / temperature).softmax(dim=-1)
    return torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators, strict=True)])


def _sampled(tokens: list[int], logprob_sum: float, eos: int) -> SampledDecoding:
    if eos in tokens:  # the end-of-text token is scored, the padding after it is not
        end = tokens.index(eos)
        return SampledDecoding(tokens=tokens[:end], avg_logprob=logprob_sum / (end + 1))
    return SampledDecoding(tokens=tokens, avg_logprob=logprob_sum / max(len(tokens), 1))


@dataclass(frozen=True)
class TokenDecoding:
    """One clip decoded at one temperature, judged by Whisper's safeguards as transformers measures them
    (the compression ratio of the token ids, COMPRESSION_RATIO_THRESHOLD): the counterpart for the Hugging
    Face engines of safeguards.Decoding, which judges text."""

    tokens: list[int]
    """Text and timestamp tokens, end-of-text excluded."""
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float

    @property
    def is_silence(self) -> bool:
        """The model heard no speech, and what it wrote is unlikely or a loop: the clip yields no text."""
        return self.no_speech_prob > NO_SPEECH_THRESHOLD and (
            self.avg_logprob < LOGPROB_THRESHOLD or self.compression_ratio > COMPRESSION_RATIO_THRESHOLD
        )

    @property
    def needs_fallback(self) -> bool:
        if self.is_silence:
            return False
        return self.compression_ratio > COMPRESSION_RATIO_THRESHOLD or self.avg_logprob < LOGPROB_THRESHOLD


def best_of_failed_decodings(attempts: Sequence[TokenDecoding]) -> TokenDecoding:
    """When every temperature failed: the likeliest decoding that is not a repetition loop, if any
    (safeguards.best_of_failed)."""
    not_looping = [a for a in attempts if a.compression_ratio <= COMPRESSION_RATIO_THRESHOLD]
    return max(not_looping or attempts, key=lambda a: a.avg_logprob)


_ATTENTION_SWITCH = threading.Lock()
"""One eager block at a time: with several engine workers on one model, a block that ended must not switch the
model back to sdpa under another that still needs the attention weights."""


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """The model's attention switched to eager (the one implementation that returns attention weights) for
    the block, and back to what it was (sdpa) afterwards, even when the block raises."""
    with _ATTENTION_SWITCH:
        previous = model.config._attn_implementation
        model.set_attn_implementation("eager")
        try:
            yield
        finally:
            model.set_attn_implementation(previous)


def token_times(
    model: Any,
    alignment_heads: Any,
    encoder_states: torch.Tensor,
    decoder_input_ids: torch.Tensor,
    prefix_length: int,
    num_frames: int,
) -> torch.Tensor:
    """The time (s) of every decoder position of one clip's decoding, as transformers' Whisper generate
    computes it with ``return_token_timestamps`` (dynamic time warping of the alignment heads' cross-attention
    over the clip's ``num_frames`` feature frames), but from one teacher-forced pass over the clip's own tokens
    alone: ``decoder_input_ids`` is the prefix then the generated tokens, end-of-text excluded.  Inside a
    batch, generate's alignment also warps the rows of the padding after a clip's end-of-text, so a clip's
    times there depend on the length of the other clips' decodings."""
    from transformers.generation.utils import GenerateEncoderDecoderOutput

    with eager_attention(model), torch.inference_mode():
        output = _decoder_pass(
            model, encoder_states[None], decoder_input_ids[None], output_attentions=True, use_cache=False
        )
    steps = GenerateEncoderDecoderOutput(sequences=decoder_input_ids[None], cross_attentions=(output.cross_attentions,))
    times = model._extract_token_timestamps(steps, alignment_heads, num_frames=num_frames, num_input_ids=prefix_length)
    return times[0].cpu()


def token_compression_ratio(token_ids: Sequence[int], vocab_size: int) -> float:
    """transformers' Whisper compression ratio: raw over zlib-compressed size of the token ids' bytes."""
    if not token_ids:
        return 0.0
    width = int(math.log2(vocab_size) / 8) + 1
    raw = b"".join(int(t).to_bytes(width, "little") for t in token_ids)
    return len(raw) / len(zlib.compress(raw))


def segments_from_words(words: list[Word], max_segment_s: float = 30.0) -> list[Segment]:
    """Group timed words into sentence-like segments (at end punctuation or every ``max_segment_s``)."""
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        too_long = current[-1].end - current[0].start >= max_segment_s
        if _SENTENCE_END.search(word.word.strip()) or too_long:
            segments.append(_segment_of(len(segments), current))
            current = []
    if current:
        segments.append(_segment_of(len(segments), current))
    return segments


def _segment_of(index: int, words: list[Word]) -> Segment:
    return Segment(
        id=index,
        start=words[0].start,
        end=words[-1].end,
        text="".join(w.word for w in words),
        words=list(words),
    )
