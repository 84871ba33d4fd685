"""A batch's statuses (OpenAI's) and the moves between them, and its items' statuses.

``validating -> in_progress -> finalizing -> completed``; ``validating -> failed`` (a bad input file);
``validating | in_progress -> cancelling -> (finalizing ->) cancelled``; ``in_progress -> (finalizing ->) expired``.
"""

from __future__ import annotations

from typing import Final

VALIDATING: Final = "validating"
FAILED: Final = "failed"
IN_PROGRESS: Final = "in_progress"
FINALIZING: Final = "finalizing"
COMPLETED: Final = "completed"
EXPIRED: Final = "expired"
CANCELLING: Final = "cancelling"
CANCELLED: Final = "cancelled"

MOVES: Final[dict[str, frozenset[str]]] = {
    VALIDATING: frozenset({IN_PROGRESS, FAILED, CANCELLING}),
    IN_PROGRESS: frozenset({FINALIZING, CANCELLING}),
    CANCELLING: frozenset({FINALIZING}),
    FINALIZING: frozenset({COMPLETED, CANCELLED, EXPIRED}),
    FAILED: frozenset(),
    COMPLETED: frozenset(),
    EXPIRED: frozenset(),
    CANCELLED: frozenset(),
}
TERMINAL: Final = frozenset(status for status, moves in MOVES.items() if not moves)
CANCELLABLE: Final = frozenset({VALIDATING, IN_PROGRESS})
TIMESTAMP_OF: Final = {
    IN_PROGRESS: "in_progress_at", FINALIZING: "finalizing_at", COMPLETED: "completed_at", FAILED: "failed_at",
    CANCELLING: "cancelling_at", CANCELLED: "cancelled_at", EXPIRED: "expired_at",
}
"""The batch's field that records when it entered each status."""


def can_move(current: str, new: str) -> bool:
    return new in MOVES.get(current, frozenset())


# An item's statuses: waiting, claimed by a replica (under a lease), or done one way or another.
PENDING: Final = "pending"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
ERRORED: Final = "errored"
"""Ran and answered an error (its status code and error body are its outcome)."""
ITEM_CANCELLED: Final = "cancelled"
ITEM_EXPIRED: Final = "expired"
"""Never ran: the batch was cancelled, or expired, first."""
UNFINISHED: Final = frozenset({PENDING, RUNNING})
