"""The jobs' durable state as SQLAlchemy tables: stored files, batches and their items (one per input line).

The schema is made and changed by the Alembic migrations in ``migrations/`` (``database.open_database`` runs them);
a change here is a new migration there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, Any: JSON}


class StoredFile(Base):
    """A file of ``/v1/files``; its bytes are ``path`` under the files directory."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    path: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    """Who may see the file: the API key that uploaded it (a digest, never the key); None without API keys."""


class BatchRow(Base):
    """A batch: its input, its status and the time it entered each, its output files and its errors."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    in_progress_at: Mapped[int | None] = mapped_column(BigInteger)
    finalizing_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelling_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    errors: Mapped[Any | None] = mapped_column(JSON)
    """``{"object": "list", "data": [{"code", "message", "param", "line"}]}`` for an input file that failed validation."""
    meta: Mapped[Any | None] = mapped_column("metadata", JSON)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    """Who may see the batch: the API key that made it (a digest); its lines' files and its outputs are its."""
    final_status: Mapped[str | None] = mapped_column(String(16))
    """While ``finalizing``: the status the batch ends in (``completed``, ``cancelled``, ``expired``)."""
    finalizer: Mapped[str | None] = mapped_column(String(64))
    """The replica writing the output files; another takes over once ``finalize_until`` has passed."""
    finalize_until: Mapped[float | None] = mapped_column(Float)


class ItemRow(Base):
    """One input line: its request, who runs it (a lease) and its outcome."""

    __tablename__ = "items"
    __table_args__ = (Index("ix_items_batch_status", "batch_id", "status"), Index("ix_items_status_id", "status", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    custom_id: Mapped[str] = mapped_column(Text)
    body: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[Any | None] = mapped_column(JSON)
    """``{"code", "message"}`` for an item that never ran (cancelled, expired)."""
