"""OpenAI's Batch API for the audio routes: ``POST /v1/batches``, ``GET /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.requests import Request

from core.errors import InvalidInputError

from ..collaborators import bound
from .dependencies import JobsDep, OwnerDep
from .shapes import batch_object, page
from .webhooks import BATCH_WEBHOOK_KEY

router = APIRouter()


class BatchRequest(BaseModel):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None = None


@router.post("/batches")
def create_batch(jobs: JobsDep, owner: OwnerDep, request: BatchRequest, http: Request) -> dict[str, Any]:
    if request.metadata and BATCH_WEBHOOK_KEY in request.metadata:
        if (webhooks := bound(http).batch_webhooks) is None:
            raise InvalidInputError(
                f"metadata.{BATCH_WEBHOOK_KEY}: this server sends no webhooks (its operator turns them on with "
                "STT_WEBHOOK_SECRET).", input="metadata", code="webhooks_disabled",
            )
        webhooks.check_batch_url(request.metadata[BATCH_WEBHOOK_KEY])
    batch = jobs.batches.create(
        request.input_file_id, request.endpoint, request.completion_window, request.metadata, owner
    )
    return batch_object(batch, jobs.batches.counts(batch.id))


@router.get("/batches")
def list_batches(
    jobs: JobsDep, owner: OwnerDep, limit: Annotated[int, Query(ge=1, le=100)] = 20, after: str | None = None
) -> dict[str, Any]:
    rows = jobs.batches.list(limit + 1, after, owner)
    return page(rows, limit, lambda batch: batch_object(batch, jobs.batches.counts(batch.id)))


@router.get("/batches/{batch_id}")
def retrieve_batch(jobs: JobsDep, owner: OwnerDep, batch_id: str) -> dict[str, Any]:
    return batch_object(jobs.batches.get(batch_id, owner), jobs.batches.counts(batch_id))


@router.post("/batches/{batch_id}/cancel")
def cancel_batch(jobs: JobsDep, owner: OwnerDep, batch_id: str) -> dict[str, Any]:
    return batch_object(jobs.batches.cancel(batch_id, owner), jobs.batches.counts(batch_id))
