"""The models a request may name: ``whisper-1`` and the registry's ids, ``/v1/models`` and the operator's
``/v1/admin/models`` routes."""

from fastapi import APIRouter

from . import admin, catalogue

router = APIRouter()
router.include_router(catalogue.router)
router.include_router(admin.router)

__all__ = ["router"]
