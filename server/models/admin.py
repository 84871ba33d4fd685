"""Operator-only routes (``STT_ADMIN_API``): load or unload a registry model now. Off, they answer 404."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ModelBusyError
from pipeline.transcriber import Transcriber

from ..collaborators import RouteSettingsDep, TranscriberDep
from .catalogue import model_card

router = APIRouter()


def _admin_transcriber(transcriber: TranscriberDep, settings: RouteSettingsDep, model_id: str) -> Transcriber:
    if not settings.admin_api:
        raise StarletteHTTPException(status_code=404, detail="Not Found")
    transcriber.registry.get(model_id)  # only registry models; the API never creates or changes one
    return transcriber


AdminDep = Annotated[Transcriber, Depends(_admin_transcriber)]


@router.post("/admin/models/{model_id}/load")
async def admin_load(transcriber: AdminDep, model_id: str, pin: bool = False) -> dict[str, Any]:
    """Operator-only (STT_ADMIN_API): load a registry model now, optionally pinned."""
    await anyio.to_thread.run_sync(lambda: transcriber.pool.load(model_id, pin=pin))
    return await anyio.to_thread.run_sync(model_card, transcriber, model_id)


@router.post("/admin/models/{model_id}/unload")
async def admin_unload(transcriber: AdminDep, model_id: str) -> dict[str, Any]:
    """Operator-only (STT_ADMIN_API): unload an idle model now."""
    unloaded = await anyio.to_thread.run_sync(transcriber.pool.unload, model_id)
    card = await anyio.to_thread.run_sync(model_card, transcriber, model_id)
    if not unloaded and card["loaded"]:
        raise ModelBusyError(f"The model {model_id!r} is in use; try again when its requests finish.", input="model")
    return card
