"""Errors about a message's audio name the message part that carried it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import STTError


@contextmanager
def naming_the_part(where: str) -> Iterator[None]:
    """Errors about the audio (``file``, in the decoder's terms) name the message part ``where`` instead."""
    try:
        yield
    except STTError as exc:
        if exc.input != "file":
            raise
        message = exc.message.replace("The uploaded file", "The audio")
        labelled = type(exc)(message, input=where, code=exc.code, retry_after_s=exc.retry_after_s)
        raise labelled from exc
