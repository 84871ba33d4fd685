"""Token log-probabilities made from words, and the text that tokens spell."""

from __future__ import annotations

from collections.abc import Iterable

from core.types import TokenLogprob


def word_tokens(words: list[str]) -> list[TokenLogprob]:
    """Whisper-like tokens for ``words``: each with its leading space, the longer ones in two pieces; the i-th word's
    tokens have log-probability -i/100, so a test can tell whose they are."""
    tokens = []
    for i, word in enumerate(words):
        pieces = [" " + word[:2], word[2:]] if len(word) > 4 else [" " + word]
        tokens += [TokenLogprob(token=p, bytes=list(p.encode()), logprob=-i / 100) for p in pieces]
    return tokens


def spelled(tokens: Iterable[TokenLogprob]) -> str:
    return b"".join(bytes(t.bytes) for t in tokens).decode()
