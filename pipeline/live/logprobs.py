"""The token log-probabilities of a live transcript's words: a delta carries the tokens that spell its words."""

from __future__ import annotations

from core.types import TokenLogprob, Transcription


def token_logprobs(result: Transcription) -> list[TokenLogprob]:
    return [token for segment in result.segments for token in segment.logprobs or []]


def words_logprobs(tokens: list[TokenLogprob], first: int, end: int) -> list[TokenLogprob]:
    """The tokens that spell words ``first`` to ``end`` (exclusive) of the text they spell, words being runs of
    non-space characters as ``str.split`` finds them; a token belongs to the word of its first non-space byte."""
    chosen, word, in_word = [], -1, False
    for token in tokens:
        own = None
        for byte in token.bytes:
            if byte in _ASCII_SPACE:
                in_word = False
                continue
            if not in_word:
                word, in_word = word + 1, True
            own = word if own is None else own
        if own is not None and first <= own < end:
            chosen.append(token)
    return chosen


_ASCII_SPACE = frozenset(b" \t\n\r\x0b\x0c")
