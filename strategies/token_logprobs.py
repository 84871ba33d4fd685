"""Token log-probabilities as a response shows them: each token's text and UTF-8 bytes, grouped by the segment
whose text the token spells."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from core.types import Segment, TokenLogprob


@cache
def _byte_of_symbol() -> dict[str, int]:
    """GPT-2's byte-level alphabet (Whisper's tokenizers use it): printable bytes stand for themselves, the other
    bytes for the characters from U+0100 up, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    symbols = {chr(b): b for b in printable}
    symbols.update({chr(256 + i): b for i, b in enumerate(others)})
    return symbols


def token_bytes(symbols: str) -> bytes:
    """The bytes a byte-level BPE token stands for, from its vocabulary entry (``"Ġhello"`` -> ``b" hello"``)."""
    table = _byte_of_symbol()
    return bytes(table[symbol] for symbol in symbols)


def token_logprobs(
    token_ids: Sequence[int], logprobs: Sequence[float], vocabulary_entry: Callable[[int], str]
) -> list[TokenLogprob]:
    """``TokenLogprob`` records for text tokens; ``vocabulary_entry`` gives a token id's byte-level entry."""
    records = []
    for token_id, logprob in zip(token_ids, logprobs, strict=True):
        raw = token_bytes(vocabulary_entry(token_id))
        records.append(TokenLogprob(token=raw.decode("utf-8", errors="replace"), bytes=list(raw), logprob=logprob))
    return records


def spread_over_segments(segments: Sequence[Segment], logprobs: Sequence[TokenLogprob]) -> list[Segment]:
    """The segments, each with the tokens that spell its text (a clip's tokens, in order, spell its segments'
    texts in order): a token goes to the last segment whose text it reaches into. Tokens before the first segment
    with text go to it, tokens between two such segments to the earlier one; segments without text get none."""
    spoken = [i for i, segment in enumerate(segments) if segment.text.strip()] or list(range(len(segments)))[:1]
    spelled = b"".join(bytes(t.bytes) for t in logprobs)
    starts, cursor = [], 0
    for i in spoken:
        text = segments[i].text.strip().encode()
        found = spelled.find(text, cursor)
        starts.append(found if found >= 0 else cursor)
        cursor = found + len(text) if found >= 0 else cursor
    owned: dict[int, list[TokenLogprob]] = {i: [] for i in range(len(segments))}
    offset, k = 0, 0
    for record in logprobs if spoken else ():
        while k + 1 < len(spoken) and starts[k + 1] < offset + len(record.bytes):
            k += 1
        owned[spoken[k]].append(record)
        offset += len(record.bytes)
    return [segment.model_copy(update={"logprobs": owned[i]}) for i, segment in enumerate(segments)]
