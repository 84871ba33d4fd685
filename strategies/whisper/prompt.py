"""What a Whisper decoding starts from: the previous text (keywords, prompt), the language and the start tokens."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

PREVIOUS_TEXT_TOKENS = 223
"""Tokens of previous text a decoding reads after ``<|startofprev|>``: 224 in all, half of Whisper's 448 decoder
positions, as OpenAI's Whisper keeps (``n_text_ctx // 2 - 1`` of the prompt) and OpenAI's API documents ("the final
224 tokens"). Every engine cuts its prompt here, so that no prompt leaves a decoding without room to write."""

Encode = Callable[[str], Sequence[int]]
"""A tokenizer's text-to-ids, reading a special token's name (``<|endoftext|>``) in the text as characters: a
prompt never writes Whisper's control tokens."""


def previous_text_tokens(encode: Encode, keywords: Sequence[str], initial_prompt: str | None) -> list[int]:
    """The previous text of every engine's decodings (without ``<|startofprev|>``): the keywords, comma-separated
    (as faster-whisper's hotwords, before the prompt; their first ``PREVIOUS_TEXT_TOKENS`` when they alone are
    more), then the end of the request's prompt, as much as the keywords leave room for. Empty when there is
    neither."""
    keyword_ids = list(encode(" " + ", ".join(keywords)))[:PREVIOUS_TEXT_TOKENS] if keywords else []
    room = PREVIOUS_TEXT_TOKENS - len(keyword_ids)
    prompt = (initial_prompt or "").strip()
    prompt_ids = list(encode(" " + prompt))[-room:] if prompt and room > 0 else []
    return [int(token) for token in keyword_ids + prompt_ids]


def transformers_prompt_ids(tokenizer: Any, keywords: Sequence[str], initial_prompt: str | None) -> list[int]:
    """``<|startofprev|>`` and the previous text for a transformers Whisper tokenizer (a special token's name read as
    text, where its ``get_prompt_ids`` raises); empty when there is no previous text."""
    previous = previous_text_tokens(
        lambda text: tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids,
        keywords,
        initial_prompt,
    )
    return [int(tokenizer.convert_tokens_to_ids("<|startofprev|>")), *previous] if previous else []


def language_setting(languages: Sequence[str]) -> str | list[str]:
    """Whisper generate's ``language``: one code for the whole batch, or one per clip when they differ."""
    return languages[0] if len(set(languages)) == 1 else list(languages)


def whisper_prefix(generation_config: Any, language: str | None, task: str = "transcribe") -> list[int]:
    """The tokens Whisper's generate starts a timestamped decoding with: <|startoftranscript|>, then for
    multilingual models the language and the task."""
    prefix = [generation_config.decoder_start_token_id]
    if language is not None:
        prefix += [generation_config.lang_to_id[f"<|{language}|>"], generation_config.task_to_id[task]]
    return prefix
