"""Audio that requests carry as text: base64 (a realtime append, chat's ``input_audio``) and ``data:`` URLs (chat's
``audio_url``, the known speakers' references). Each route words its own errors; the reading is done here."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

HEADER_SEARCH_CHARS = 256
"""A data URL's header (``data:<media type>[;base64],``) is looked for in this many first characters, so that a large
payload is never scanned for a comma."""
_HEADER = re.compile(r"data:(?P<media_type>[^,]*?)(?P<base64>;base64)?,", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class DataUrl:
    media_type: str
    base64: bool
    """The data is base64; otherwise it is percent-encoded bytes."""
    data: str
    """What follows the header's comma."""


def parse_data_url(text: str) -> DataUrl | None:
    """``text`` as a ``data:`` URL (the scheme in any case, the media type possibly empty); None when it is not one."""
    match = _HEADER.match(text[:HEADER_SEARCH_CHARS])
    if match is None:
        return None
    return DataUrl(match["media_type"], match["base64"] is not None, text[match.end() :])


def unwrapped(text: str) -> str:
    """Base64 text without whitespace: ``base64`` wraps its output in lines unless told ``-w0``."""
    return _WHITESPACE.sub("", text) if _WHITESPACE.search(text) else text


def decoded_size(text: str) -> int:
    """The bytes that base64 ``text`` (unwrapped) stands for, counted without decoding it."""
    return len(text) * 3 // 4 - text[-2:].count("=")


def decode_base64(text: str) -> bytes:
    """Strict base64: ``binascii.Error`` (a ValueError) for a character outside the alphabet or wrong padding,
    ValueError for text that is not ASCII."""
    return base64.b64decode(text, validate=True)
