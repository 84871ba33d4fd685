"""The jobs' errors, in domain terms (a kind, the input at fault): the server maps them to statuses."""

from __future__ import annotations

from core.errors import ErrorKind, InvalidInputError, STTError, TooLargeError

__all__ = ["InvalidInputError", "NotFoundError", "StoreFullError", "TooLargeError", "WrongStateError"]


class NotFoundError(STTError):
    """A file or batch id that names nothing (or nothing that is the caller's)."""

    kind = ErrorKind.NOT_FOUND
    code = "not_found"


class StoreFullError(STTError):
    """The store holds as many files as it may: one must be deleted first."""

    kind = ErrorKind.INVALID_INPUT
    code = "files_limit_reached"


class WrongStateError(STTError):
    """The batch is not in a state that allows it (cancelling a completed batch)."""

    kind = ErrorKind.CONFLICT
    code = "invalid_batch_state"
