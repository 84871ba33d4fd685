"""``strategies/whisper/prompt.py``: the previous text every engine's decodings read, cut in one place."""

from __future__ import annotations

from strategies.whisper.prompt import PREVIOUS_TEXT_TOKENS, previous_text_tokens


def by_word(text: str) -> list[int]:
    """A stand-in tokenizer: one token per word, its length (the text's first word marked 100 + length)."""
    words = text.split()
    return [100 + len(words[0])] + [len(word) for word in words[1:]] if words else []


def test_nothing_to_read_is_no_tokens():
    assert previous_text_tokens(by_word, (), None) == []
    assert previous_text_tokens(by_word, (), "   ") == []


def test_the_keywords_come_first_then_the_prompt():
    assert previous_text_tokens(by_word, ("Kenobi", "Tatooine"), "a long time ago") == [107, 8, 101, 4, 4, 3]
    assert previous_text_tokens(by_word, ("Kenobi",), None) == [106]


def test_only_the_end_of_a_long_prompt_is_read_224_tokens_with_startofprev():
    prompt = " ".join(["x" * (1 + i % 7) for i in range(5000)])
    tokens = previous_text_tokens(by_word, (), prompt)
    assert len(tokens) == PREVIOUS_TEXT_TOKENS == 223
    assert tokens == by_word(prompt)[-PREVIOUS_TEXT_TOKENS:]


def test_the_keywords_keep_their_place_and_the_prompt_gets_the_room_they_leave():
    keywords = tuple("k" * 5 for _ in range(100))  # " kkkkk, kkkkk, ...": 100 tokens
    prompt = " ".join(["p" * 3] * 1000)
    tokens = previous_text_tokens(by_word, keywords, prompt)
    assert len(tokens) == PREVIOUS_TEXT_TOKENS
    assert tokens[:100] == by_word(" " + ", ".join(keywords)) and tokens[100:] == [3] * 123


def test_keywords_longer_than_the_window_keep_their_first_tokens_and_leave_no_room():
    keywords = tuple(f"w{i}" for i in range(400))
    tokens = previous_text_tokens(by_word, keywords, "a prompt")
    assert tokens == by_word(" " + ", ".join(keywords))[:PREVIOUS_TEXT_TOKENS]
