"""Text a request carries (a prompt, keywords, a speaker's name, chat messages): its size in UTF-8, measured without
encoding a text that is certainly too large, and the characters no such text may hold."""

from __future__ import annotations

import re

from .errors import InvalidInputError

_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
"""Bidirectional embeddings, overrides and isolates: they make a text read differently from what it holds."""
_SURROGATES = "\ud800-\udfff"
"""Halves of a UTF-16 pair, alone: JSON's ``\\ud800`` escapes can carry them; they are no Unicode text."""
_LONE_SURROGATE = re.compile(f"[{_SURROGATES}]")
_IN_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_SURROGATES}]")
"""What running text (a prompt) may not hold: C0 and C1 controls but tab, line feed and carriage return."""
_ON_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_SURROGATES}]")
"""What a name or a keyword may not hold: every C0 and C1 control."""


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (lone surrogates counted as three)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def over_utf8_size(text: str, max_bytes: int) -> bool:
    """Whether ``text`` takes more than ``max_bytes`` in UTF-8: a text of more characters is over without being
    encoded (each character takes a byte at least), so no more than four times ``max_bytes`` is ever encoded."""
    return len(text) > max_bytes or utf8_size(text) > max_bytes


def check_characters(text: str, input: str, *, lines: bool) -> None:
    """InvalidInputError naming ``input`` when ``text`` holds a control character (tab and line breaks allowed in
    ``lines`` of running text), a bidirectional override or isolate, or a lone surrogate."""
    found = (_IN_LINES if lines else _ON_ONE_LINE).search(text)
    if found is not None:
        raise InvalidInputError(
            f"{input} holds the character U+{ord(found[0]):04X} at {found.start()}: control characters, "
            "bidirectional overrides and lone surrogates are not accepted.",
            input=input,
        )


def check_unicode(text: str, input: str) -> None:
    """InvalidInputError naming ``input`` when ``text`` holds a lone surrogate: it cannot be encoded, so no tokenizer
    can read it."""
    found = _LONE_SURROGATE.search(text)
    if found is not None:
        raise InvalidInputError(
            f"{input} holds a lone surrogate (U+{ord(found[0]):04X} at {found.start()}): it is not Unicode text.",
            input=input,
        )
