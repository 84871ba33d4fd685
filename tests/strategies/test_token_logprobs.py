from __future__ import annotations

from core.types import Segment, TokenLogprob
from strategies.token_logprobs import spread_over_segments, token_bytes, token_logprobs


def _tokens(*texts: str) -> list[TokenLogprob]:
    return [TokenLogprob(token=t, bytes=list(t.encode()), logprob=-float(i)) for i, t in enumerate(texts)]


def _segment(index: int, text: str) -> Segment:
    return Segment(id=index, start=index, end=index + 1, text=text)


def test_byte_level_entries_become_their_bytes_even_half_a_character():
    assert token_bytes("Ġhello") == b" hello"
    assert token_bytes("Ã©") == "é".encode()
    half = token_logprobs([7], [-0.5], lambda _: "Ã")  # the first byte of a two-byte character
    assert half[0].bytes == [0xC3] and half[0].token == "\ufffd" and half[0].logprob == -0.5


def test_each_token_goes_to_the_segment_whose_text_it_spells():
    segments = [_segment(0, " Hello world."), _segment(1, " "), _segment(2, " How are you?")]
    spread = spread_over_segments(segments, _tokens(" Hello", " world", ".", " How", " are", " you", "?"))
    assert [[t.token for t in s.logprobs] for s in spread] == [[" Hello", " world", "."], [], [" How", " are", " you", "?"]]
    assert [t.logprob for s in spread for t in s.logprobs] == [0, -1, -2, -3, -4, -5, -6]


def test_a_token_spanning_two_segments_goes_to_the_later_and_text_that_differs_keeps_the_order():
    spread = spread_over_segments([_segment(0, "ab"), _segment(1, "cd")], _tokens("a", "bc", "d"))
    assert [[t.token for t in s.logprobs] for s in spread] == [["a"], ["bc", "d"]]
    unmatched = spread_over_segments([_segment(0, "xyz"), _segment(1, "cd")], _tokens("a", "b", "cd"))
    assert [[t.token for t in s.logprobs] for s in unmatched] == [["a", "b"], ["cd"]]
