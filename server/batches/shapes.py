"""The stored files and batches in OpenAI's shapes (``openai.types.FileObject``, ``Batch``), and list pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pipeline.jobs.batches import RequestCounts
from pipeline.jobs.tables import BatchRow, StoredFile

Row = TypeVar("Row", StoredFile, BatchRow)


def file_object(record: StoredFile) -> dict[str, Any]:
    return {
        "id": record.id, "object": "file", "bytes": record.bytes, "created_at": record.created_at,
        "filename": record.filename, "purpose": record.purpose, "status": "processed", "expires_at": None,
        "status_details": None,
    }


def batch_object(batch: BatchRow, counts: RequestCounts) -> dict[str, Any]:
    return {
        "id": batch.id, "object": "batch", "endpoint": batch.endpoint, "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window, "status": batch.status, "created_at": batch.created_at,
        "expires_at": batch.expires_at, "in_progress_at": batch.in_progress_at, "finalizing_at": batch.finalizing_at,
        "completed_at": batch.completed_at, "failed_at": batch.failed_at, "cancelling_at": batch.cancelling_at,
        "cancelled_at": batch.cancelled_at, "expired_at": batch.expired_at, "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id, "errors": batch.errors, "metadata": batch.meta, "model": None,
        "usage": None,
        "request_counts": {"total": counts.total, "completed": counts.completed, "failed": counts.failed},
    }


def page(rows: Sequence[Row], limit: int, shape: Callable[[Row], dict[str, Any]]) -> dict[str, Any]:
    """A cursor page of ``limit`` rows; ``rows`` holds one more when there are more."""
    shown = list(rows[:limit])
    data = [shape(row) for row in shown]
    return {
        "object": "list", "data": data, "first_id": shown[0].id if shown else None,
        "last_id": shown[-1].id if shown else None, "has_more": len(rows) > limit,
    }
