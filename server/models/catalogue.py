"""``GET /v1/models`` and ``GET /v1/models/{id}``: the registry's models in OpenAI's shape, with what the pool
knows of each (loaded, pinned, in use, resident bytes)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter

from pipeline.transcriber import Transcriber

from ..collaborators import TranscriberDep
from .names import DEFAULT_MODEL_ALIASES

MODEL_CREATED = 1_700_000_000  # registry entries have no creation time; OpenAI's shape requires one

router = APIRouter()


def model_card(transcriber: Transcriber, model_id: str, shown_id: str | None = None) -> dict[str, Any]:
    """A model in OpenAI's shape, with extensions; ``shown_id`` names an alias, whose card also says ``alias_of``."""
    spec = transcriber.registry.get(model_id)
    state = transcriber.pool.state(spec.id)
    alias = {"alias_of": spec.id} if shown_id else {}
    return {
        "id": shown_id or spec.id,
        **alias,
        "object": "model",
        "created": MODEL_CREATED,
        "owned_by": "speech-to-text",
        "kind": spec.kind,
        "engine": spec.engine,
        "language": spec.language,
        "default": spec.id == transcriber.default_model,
        "loaded": bool(state and state.loaded),
        "pinned": bool(state and state.pinned),
        "in_use": state.leases if state else 0,
        "resident_bytes": state.resident_bytes if state else 0,
    }


# The model cards read the pool's state under its lock: off the event loop, so health checks never wait on it.


def _model_cards(transcriber: Transcriber) -> list[dict[str, Any]]:
    """The registry's models, then the default model's aliases (``whisper-1``), as OpenAI lists the names it takes."""
    cards = [model_card(transcriber, spec.id) for spec in transcriber.registry]
    aliases = sorted(DEFAULT_MODEL_ALIASES)
    return cards + [model_card(transcriber, transcriber.default_model, alias) for alias in aliases]


@router.get("/models")
async def list_models(transcriber: TranscriberDep) -> dict[str, Any]:
    cards = await anyio.to_thread.run_sync(_model_cards, transcriber)
    return {"object": "list", "data": cards}


@router.get("/models/{model_id}")
async def retrieve_model(transcriber: TranscriberDep, model_id: str) -> dict[str, Any]:
    if model_id in DEFAULT_MODEL_ALIASES:
        return await anyio.to_thread.run_sync(model_card, transcriber, transcriber.default_model, model_id)
    return await anyio.to_thread.run_sync(model_card, transcriber, model_id)
