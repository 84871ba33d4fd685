"""OpenAI's Files and Batch APIs: ``/v1/files`` and ``/v1/batches`` (the routes), the batch lines run as the audio
routes run their requests (``item_runner``, ``line_body``, ``remote_audio``); the jobs themselves are
``pipeline.jobs``."""

from __future__ import annotations

from fastapi import APIRouter

from .batches_route import router as batches_router
from .files_route import router as files_router

router = APIRouter()
router.include_router(files_router)
router.include_router(batches_router)

__all__ = ["router"]
