"""OpenAI's Files API: ``POST /v1/files`` (``purpose`` ``batch`` or ``user_data``), ``GET /v1/files``,
``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``. The routes are plain functions:
FastAPI runs them on its thread pool, away from the event loop, as they read and write the disk and the database."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from .dependencies import JobsDep, OwnerDep
from .shapes import file_object, page

router = APIRouter()


@router.post("/files")
def create_file(
    jobs: JobsDep, owner: OwnerDep, file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]
) -> dict[str, Any]:
    return file_object(jobs.files.create(file.file, file.filename or "file", purpose, owner))


@router.get("/files")
def list_files(
    jobs: JobsDep,
    owner: OwnerDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    after: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    return page(jobs.files.list(purpose, limit + 1, after, order, owner), limit, file_object)


@router.get("/files/{file_id}")
def retrieve_file(jobs: JobsDep, owner: OwnerDep, file_id: str) -> dict[str, Any]:
    return file_object(jobs.files.get(file_id, owner))


@router.get("/files/{file_id}/content")
def file_content(jobs: JobsDep, owner: OwnerDep, file_id: str) -> FileResponse:
    record = jobs.files.get(file_id, owner)
    return FileResponse(jobs.files.directory / record.path, media_type="application/octet-stream",
                        filename=record.filename)


@router.delete("/files/{file_id}")
def delete_file(jobs: JobsDep, owner: OwnerDep, file_id: str) -> dict[str, Any]:
    jobs.files.delete(file_id, owner)
    return {"id": file_id, "object": "file", "deleted": True}
