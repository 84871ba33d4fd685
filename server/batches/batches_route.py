"""OpenAI's Batch API for the audio routes: ``POST /v1/batches``, ``GET /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from .dependencies import JobsDep
from .shapes import batch_object, page

router = APIRouter()


class BatchRequest(BaseModel):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None = None


@router.post("/batches")
def create_batch(jobs: JobsDep, request: BatchRequest) -> dict[str, Any]:
    batch = jobs.batches.create(request.input_file_id, request.endpoint, request.completion_window, request.metadata)
    return batch_object(batch, jobs.batches.counts(batch.id))


@router.get("/batches")
def list_batches(
    jobs: JobsDep, limit: Annotated[int, Query(ge=1, le=100)] = 20, after: str | None = None
) -> dict[str, Any]:
    rows = jobs.batches.list(limit + 1, after)
    return page(rows, limit, lambda batch: batch_object(batch, jobs.batches.counts(batch.id)))


@router.get("/batches/{batch_id}")
def retrieve_batch(jobs: JobsDep, batch_id: str) -> dict[str, Any]:
    return batch_object(jobs.batches.get(batch_id), jobs.batches.counts(batch_id))


@router.post("/batches/{batch_id}/cancel")
def cancel_batch(jobs: JobsDep, batch_id: str) -> dict[str, Any]:
    return batch_object(jobs.batches.cancel(batch_id), jobs.batches.counts(batch_id))
