"""The file store of ``/v1/files``: each file's bytes in the files directory, its record in the database."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from .errors import InvalidInputError, NotFoundError, StoreFullError, TooLargeError
from .tables import StoredFile

ANYONE = "*"
"""The owner argument that sees every file (the server's own work: a batch's lines, its outputs)."""
UPLOAD_PURPOSES = frozenset({"batch", "user_data"})
"""What a client may upload a file for; the server writes ``batch_output`` files itself."""
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileLimits:
    max_bytes: int = 100 * 2**20
    max_files: int = 10_000


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


class FileStore:
    def __init__(self, sessions: sessionmaker[Session], directory: Path, limits: FileLimits = FileLimits(),
                 clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self._clock = clock
        self.directory = directory
        self.limits = limits
        directory.mkdir(parents=True, exist_ok=True)

    def create(self, stream: BinaryIO, filename: str, purpose: str, owner: str | None = None) -> StoredFile:
        """Store an upload; refused before a byte is written when the purpose is not one a client may use or the
        store is full, and once it passes ``max_bytes`` (``TooLargeError``)."""
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidInputError(
                f"Invalid purpose {purpose!r}: use one of {', '.join(sorted(UPLOAD_PURPOSES))}.", input="purpose"
            )
        return self._store(_chunks(stream), filename, purpose, owner)

    def create_output(self, lines: Iterable[bytes], filename: str, owner: str | None) -> StoredFile:
        """A file the server writes (a batch's output or errors, its batch's owner's): not bounded by the count."""
        return self._store(lines, filename, "batch_output", owner, bounded=False)

    def _store(self, chunks: Iterable[bytes], filename: str, purpose: str, owner: str | None,
               bounded: bool = True) -> StoredFile:
        if bounded and self.count() >= self.limits.max_files:
            raise StoreFullError(
                f"The server holds its limit of {self.limits.max_files} files: delete some first.", input="file"
            )
        file_id = new_id("file-")
        path = self.directory / file_id
        size = 0
        try:
            with open(path, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if bounded and size > self.limits.max_bytes:
                        raise TooLargeError(
                            f"The file is larger than the limit of {self.limits.max_bytes} bytes.", input="file"
                        )
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            record = StoredFile(
                id=file_id, purpose=purpose, filename=filename[:512] or "file", bytes=size,
                created_at=int(self._clock()), path=file_id, owner=owner,
            )
            with self._sessions.begin() as session:
                session.add(record)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return record

    def count(self) -> int:
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(StoredFile)) or 0)

    def get(self, file_id: str, owner: str | None = ANYONE) -> StoredFile:
        """The file, if ``owner``'s (another's is as unknown as a file that does not exist)."""
        with self._sessions() as session:
            record = session.get(StoredFile, file_id)
        if record is None or (owner != ANYONE and record.owner != owner):
            raise NotFoundError(f"No such file: {file_id!r}.", input="file_id")
        return record

    def path(self, file_id: str, owner: str | None = ANYONE) -> Path:
        return self.directory / self.get(file_id, owner).path

    def list(self, purpose: str | None = None, limit: int = 10_000, after: str | None = None,
             order: str = "desc", owner: str | None = ANYONE) -> list[StoredFile]:
        """``owner``'s files, newest first (``order="asc"``: oldest first), from after the file ``after`` names."""
        with self._sessions() as session:
            query = select(StoredFile)
            if owner != ANYONE:
                query = query.where(StoredFile.owner.is_not_distinct_from(owner))
            if purpose:
                query = query.where(StoredFile.purpose == purpose)
            key = (StoredFile.created_at, StoredFile.id)
            if after is not None and (anchor := session.get(StoredFile, after)) is not None:
                pivot = (anchor.created_at, anchor.id)
                if order == "asc":
                    query = query.where(
                        (StoredFile.created_at > pivot[0])
                        | ((StoredFile.created_at == pivot[0]) & (StoredFile.id > pivot[1]))
                    )
                else:
                    query = query.where(
                        (StoredFile.created_at < pivot[0])
                        | ((StoredFile.created_at == pivot[0]) & (StoredFile.id < pivot[1]))
                    )
            ordering = [k.asc() for k in key] if order == "asc" else [k.desc() for k in key]
            return list(session.scalars(query.order_by(*ordering).limit(limit)))

    def delete(self, file_id: str, owner: str | None = ANYONE) -> None:
        with self._sessions.begin() as session:
            record = session.get(StoredFile, file_id)
            if record is None or (owner != ANYONE and record.owner != owner):
                raise NotFoundError(f"No such file: {file_id!r}.", input="file_id")
            session.delete(record)
        (self.directory / record.path).unlink(missing_ok=True)


def _chunks(stream: BinaryIO) -> Iterable[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk
