"""The tokens that spell a live transcript's words."""

from __future__ import annotations

from core.types import TokenLogprob
from pipeline.live.logprobs import words_logprobs
from tests.fakes import word_tokens
from tests.support.tokens import spelled


def test_word_tokens_are_picked_by_the_words_they_spell():
    tokens = word_tokens("the quick brown fox".split())
    assert spelled(words_logprobs(tokens, 1, 3)) == " quick brown"
    assert spelled(words_logprobs(tokens, 0, 1)) == " the"
    assert words_logprobs(tokens, 4, 9) == []
    glued = [TokenLogprob(token=t, bytes=list(t.encode()), logprob=0.0) for t in ("Hello", ",", " wor", "ld", "!")]
    assert spelled(words_logprobs(glued, 1, 2)) == " world!"  # punctuation stays with its word, as in str.split
