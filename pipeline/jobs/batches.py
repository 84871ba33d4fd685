"""The batch store: batches and their items in the database, moved through their statuses (``states``) by
conditional updates, so that several workers (threads, replicas sharing a database) never run an item twice nor
finalise a batch twice.

An item is claimed under a lease (``claimed_by``, ``lease_until``) that its worker renews while it runs; an item
whose lease has passed (its replica died, or restarted) is claimed again. Only the holder of the lease records an
outcome, so each item has exactly one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from . import states
from .errors import InvalidInputError, NotFoundError, WrongStateError
from .files import ANYONE, FileStore, new_id
from .input_lines import LineError, OwnedBodyCheck, read_input
from .output_lines import is_error, jsonl, output_line
from .tables import BatchRow, ItemRow

ENDPOINTS = ("/v1/audio/transcriptions", "/v1/audio/translations")
COMPLETION_WINDOWS = {"24h": 24 * 3600}
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512


@dataclass(frozen=True)
class BatchLimits:
    max_lines: int = 50_000
    lease_s: float = 60.0
    """How long a claimed item stays its worker's without a renewal; a dead replica's items wait this long."""
    retention_s: float | None = None
    """How long an ended batch, its lines and its output files are kept after it ended; None: until deleted."""


@dataclass(frozen=True)
class RequestCounts:
    total: int
    completed: int
    failed: int


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    batch_id: str
    endpoint: str
    custom_id: str
    body: dict[str, Any]
    owner: str | None = None
    """The batch's owner: the files its lines name must be theirs."""


@dataclass(frozen=True)
class Outcome:
    """What an item answered: the status and body the synchronous route would have."""

    status_code: int
    body: Any


def check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_PAIRS or not all(
        isinstance(key, str) and isinstance(value, str) and len(key) <= MAX_METADATA_KEY_CHARS
        and len(value) <= MAX_METADATA_VALUE_CHARS for key, value in metadata.items()
    ):
        raise InvalidInputError(
            f"metadata must be an object of at most {MAX_METADATA_PAIRS} string values, keys of at most "
            f"{MAX_METADATA_KEY_CHARS} characters and values of at most {MAX_METADATA_VALUE_CHARS}.",
            input="metadata",
        )
    return metadata


class BatchStore:
    def __init__(self, sessions: sessionmaker[Session], files: FileStore, limits: BatchLimits = BatchLimits(),
                 clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self.files = files
        self.limits = limits
        self._clock = clock
        bind = sessions.kw.get("bind")
        self._row_locks = bind is not None and bind.dialect.name == "postgresql"
        """Whether the database locks rows (``SELECT ... FOR UPDATE SKIP LOCKED``)."""

    # ------------------------------------------------------------------ the API's operations

    def create(self, input_file_id: str, endpoint: str, completion_window: str,
               metadata: dict[str, str] | None = None, owner: str | None = None) -> BatchRow:
        """A batch in ``validating``; what can be refused at once is (endpoint, window, metadata, the file and its
        line count), the lines themselves are read by a worker (``validate_next``)."""
        if endpoint not in ENDPOINTS:
            raise InvalidInputError(
                f"Invalid endpoint {endpoint!r}: this server batches {' and '.join(ENDPOINTS)}.", input="endpoint"
            )
        if completion_window not in COMPLETION_WINDOWS:
            raise InvalidInputError(
                f"Invalid completion_window {completion_window!r}: use '24h'.", input="completion_window"
            )
        metadata = check_metadata(metadata)
        record = self.files.get(input_file_id, owner)
        if record.purpose != "batch":
            raise InvalidInputError(
                f"The file {input_file_id!r} was uploaded with purpose {record.purpose!r}, not 'batch'.",
                input="input_file_id",
            )
        if (lines := _count_lines(self.files.path(input_file_id))) > self.limits.max_lines:
            raise InvalidInputError(
                f"The input file has {lines} lines; a batch holds at most {self.limits.max_lines}.",
                input="input_file_id",
            )
        now = int(self._clock())
        batch = BatchRow(
            id=new_id("batch_"), endpoint=endpoint, input_file_id=input_file_id, completion_window=completion_window,
            status=states.VALIDATING, created_at=now, expires_at=now + COMPLETION_WINDOWS[completion_window],
            meta=metadata, owner=owner,
        )
        with self._sessions.begin() as session:
            session.add(batch)
        return batch

    def get(self, batch_id: str, owner: str | None = ANYONE) -> BatchRow:
        """The batch, if ``owner``'s (another's is as unknown as one that does not exist)."""
        with self._sessions() as session:
            batch = session.get(BatchRow, batch_id)
        if batch is None or (owner != ANYONE and batch.owner != owner):
            raise NotFoundError(f"No such batch: {batch_id!r}.", input="batch_id")
        return batch

    def list(self, limit: int = 20, after: str | None = None, owner: str | None = ANYONE) -> list[BatchRow]:
        """``owner``'s batches, newest first, from after the batch ``after`` names."""
        with self._sessions() as session:
            query = select(BatchRow)
            if owner != ANYONE:
                query = query.where(BatchRow.owner.is_not_distinct_from(owner))
            if after is not None and (anchor := session.get(BatchRow, after)) is not None:
                query = query.where(or_(
                    BatchRow.created_at < anchor.created_at,
                    and_(BatchRow.created_at == anchor.created_at, BatchRow.id < anchor.id),
                ))
            return list(session.scalars(query.order_by(BatchRow.created_at.desc(), BatchRow.id.desc()).limit(limit)))

    def counts(self, batch_id: str) -> RequestCounts:
        with self._sessions() as session:
            rows = session.execute(
                select(ItemRow.status, func.count()).where(ItemRow.batch_id == batch_id).group_by(ItemRow.status)
            ).all()
        by_status = {status: count for status, count in rows}
        return RequestCounts(
            total=sum(by_status.values()),
            completed=by_status.get(states.SUCCEEDED, 0),
            failed=by_status.get(states.ERRORED, 0),
        )

    def cancel(self, batch_id: str, owner: str | None = ANYONE) -> BatchRow:
        """``cancelling``: the items not started are cancelled now, those running finish; a worker then writes what
        is done and the batch ends ``cancelled`` (``settle``)."""
        now = self._clock()
        with self._sessions.begin() as session:
            batch = session.get(BatchRow, batch_id, with_for_update=True)
            if batch is None or (owner != ANYONE and batch.owner != owner):
                raise NotFoundError(f"No such batch: {batch_id!r}.", input="batch_id")
            if batch.status == states.CANCELLING:
                return batch
            if batch.status not in states.CANCELLABLE:
                raise WrongStateError(f"The batch is {batch.status}: it cannot be cancelled.", input="batch_id")
            session.execute(
                update(ItemRow).where(ItemRow.batch_id == batch_id, ItemRow.status == states.PENDING)
                .values(status=states.ITEM_CANCELLED)
            )
            batch.status = states.CANCELLING
            batch.cancelling_at = int(now)
            batch.final_status = states.CANCELLED
        return batch

    # ------------------------------------------------------------------ the worker's steps

    def validate_next(self, check: OwnedBodyCheck) -> tuple[str, str] | None:
        """Read one ``validating`` batch's input file: its items and ``in_progress``, or ``failed`` with the lines'
        errors. Two workers may read the same batch; one of them records it. The batch's id and the status this
        call moved it to; None when none waited, or another worker recorded it first."""
        with self._sessions() as session:
            batch = session.scalars(
                select(BatchRow).where(BatchRow.status == states.VALIDATING).order_by(BatchRow.created_at).limit(1)
            ).first()
        if batch is None:
            return None
        try:
            with open(self.files.path(batch.input_file_id), "rb") as raw:
                lines, errors = read_input(raw, batch.endpoint, partial(check, owner=batch.owner),
                                           self.limits.max_lines)
        except NotFoundError:
            lines, errors = [], [_missing_input(batch.input_file_id)]
        now = int(self._clock())
        with self._sessions.begin() as session:
            if errors:
                moved = session.execute(
                    update(BatchRow).where(BatchRow.id == batch.id, BatchRow.status == states.VALIDATING)
                    .values(status=states.FAILED, failed_at=now,
                            errors={"object": "list", "data": [error.as_dict() for error in errors]})
                ).rowcount
                return (batch.id, states.FAILED) if moved == 1 else None
            moved = session.execute(
                update(BatchRow).where(BatchRow.id == batch.id, BatchRow.status == states.VALIDATING)
                .values(status=states.IN_PROGRESS, in_progress_at=now)
            ).rowcount
            if moved != 1:
                return None
            session.add_all(
                ItemRow(batch_id=batch.id, line=line.line, custom_id=line.custom_id, body=line.body,
                        status=states.PENDING, attempts=0)
                for line in lines
            )
        return batch.id, states.IN_PROGRESS

    def claim(self, worker: str, has_room: Callable[[dict[str, Any]], bool], look_ahead: int = 16) -> ClaimedItem | None:
        """The first waiting item (of a batch ``in_progress``) whose model has room (``has_room``), claimed for
        ``worker`` under a lease; an item whose lease has passed is waiting again. None when none can start.

        On PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``: replicas claiming at once each get other
        rows, without waiting on each other. SQLite (one writer at a time, no row locks) reads them first and claims
        with a conditional update; on either, the update's condition keeps an item from being claimed twice."""
        now = self._clock()
        waiting = or_(ItemRow.status == states.PENDING, and_(ItemRow.status == states.RUNNING,
                                                             ItemRow.lease_until < now))
        candidates = (
            select(ItemRow.id, ItemRow.batch_id, BatchRow.endpoint, ItemRow.custom_id, ItemRow.body, BatchRow.owner)
            .join(BatchRow, BatchRow.id == ItemRow.batch_id)
            .where(BatchRow.status == states.IN_PROGRESS, waiting)
            .order_by(ItemRow.id).limit(look_ahead)
        )
        if self._row_locks:
            with self._sessions.begin() as session:
                for row in session.execute(candidates.with_for_update(of=ItemRow, skip_locked=True)).all():
                    if has_room(row.body) and self._take(session, row.id, worker, waiting, now):
                        return ClaimedItem(*row)
            return None
        with self._sessions() as session:
            rows = session.execute(candidates).all()
        for row in rows:
            if not has_room(row.body):
                continue
            with self._sessions.begin() as session:
                if self._take(session, row.id, worker, waiting, now):
                    return ClaimedItem(*row)
        return None

    def _take(self, session: Session, item_id: int, worker: str, waiting: Any, now: float) -> bool:
        return session.execute(
            update(ItemRow).where(ItemRow.id == item_id, waiting)
            .values(status=states.RUNNING, claimed_by=worker, lease_until=now + self.limits.lease_s,
                    attempts=ItemRow.attempts + 1)
        ).rowcount == 1

    def renew(self, worker: str, item_ids: list[int]) -> None:
        """Extend the leases of the items ``worker`` runs."""
        if not item_ids:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(ItemRow).where(ItemRow.id.in_(item_ids), ItemRow.claimed_by == worker,
                                      ItemRow.status == states.RUNNING)
                .values(lease_until=self._clock() + self.limits.lease_s)
            )

    def finish(self, worker: str, item_id: int, outcome: Outcome) -> bool:
        """Record the item's outcome, if ``worker`` still holds it (False: its lease passed and another took it)."""
        status = states.SUCCEEDED if outcome.status_code < 400 else states.ERRORED
        with self._sessions.begin() as session:
            return session.execute(
                update(ItemRow).where(ItemRow.id == item_id, ItemRow.claimed_by == worker,
                                      ItemRow.status == states.RUNNING)
                .values(status=status, status_code=outcome.status_code, response_body=outcome.body,
                        request_id=new_id("req_"), lease_until=None)
            ).rowcount == 1

    def settle(self, worker: str) -> list[tuple[str, str]]:
        """Expire the batches past their window, then finalise those with no item left to run: write their output
        and error files and move them to their final status. The batches that ended here, with their status."""
        self._expire_overdue()
        self._purge_past_retention()
        ended = []
        for batch_id in self._ready_to_finalize(worker):
            if (final := self._write_outputs(worker, batch_id)) is not None:
                ended.append((batch_id, final))
        return ended

    def _expire_overdue(self) -> None:
        """Batches past their window: items not started are expired, the batch ends ``expired`` once those running
        finish."""
        now = int(self._clock())
        with self._sessions.begin() as session:
            overdue = list(session.scalars(
                select(BatchRow.id).where(BatchRow.status.in_((states.VALIDATING, states.IN_PROGRESS)),
                                          BatchRow.expires_at <= now)
            ))
            for batch_id in overdue:
                session.execute(
                    update(ItemRow).where(ItemRow.batch_id == batch_id, ItemRow.status == states.PENDING)
                    .values(status=states.ITEM_EXPIRED)
                )
                session.execute(
                    update(BatchRow).where(BatchRow.id == batch_id,
                                           BatchRow.status.in_((states.VALIDATING, states.IN_PROGRESS)))
                    .values(status=states.IN_PROGRESS, final_status=states.EXPIRED)
                )
            # A cancelled batch's item whose replica died never finishes: it is cancelled too.
            session.execute(
                update(ItemRow).where(
                    ItemRow.batch_id.in_(select(BatchRow.id).where(BatchRow.status == states.CANCELLING)),
                    ItemRow.status == states.RUNNING, ItemRow.lease_until < self._clock(),
                ).values(status=states.ITEM_CANCELLED)
            )

    def _purge_past_retention(self) -> None:
        """Delete the batches that ended more than ``retention_s`` ago, with their lines and output files."""
        if self.limits.retention_s is None:
            return
        cutoff = int(self._clock() - self.limits.retention_s)
        ended_at = func.coalesce(BatchRow.completed_at, BatchRow.failed_at, BatchRow.cancelled_at, BatchRow.expired_at)
        with self._sessions() as session:
            old = session.execute(
                select(BatchRow.id, BatchRow.output_file_id, BatchRow.error_file_id)
                .where(BatchRow.status.in_(states.TERMINAL), ended_at < cutoff).limit(100)
            ).all()
        for batch_id, *outputs in old:
            for file_id in outputs:
                if file_id is not None:
                    try:
                        self.files.delete(file_id)
                    except NotFoundError:
                        pass  # deleted by its owner, or by another replica's purge
            with self._sessions.begin() as session:
                session.execute(delete(ItemRow).where(ItemRow.batch_id == batch_id))
                session.execute(delete(BatchRow).where(BatchRow.id == batch_id))

    def _ready_to_finalize(self, worker: str) -> Iterator[str]:
        """Batches whose items are all done, each moved to ``finalizing`` for ``worker`` (or taken over from a
        finaliser whose time has passed)."""
        now = self._clock()
        unfinished = (
            select(ItemRow.id).where(ItemRow.batch_id == BatchRow.id, ItemRow.status.in_(states.UNFINISHED)).exists()
        )
        with self._sessions() as session:
            ready = list(session.scalars(
                select(BatchRow.id).where(
                    or_(and_(BatchRow.status.in_((states.IN_PROGRESS, states.CANCELLING)), ~unfinished),
                        and_(BatchRow.status == states.FINALIZING, BatchRow.finalize_until < now))
                )
            ))
        for batch_id in ready:
            with self._sessions.begin() as session:
                taken = session.execute(
                    update(BatchRow).where(
                        BatchRow.id == batch_id,
                        or_(BatchRow.status.in_((states.IN_PROGRESS, states.CANCELLING)),
                            and_(BatchRow.status == states.FINALIZING, BatchRow.finalize_until < now)),
                    ).values(status=states.FINALIZING, finalizing_at=func.coalesce(BatchRow.finalizing_at, int(now)),
                             finalizer=worker, finalize_until=now + self.limits.lease_s)
                ).rowcount
            if taken == 1:
                yield batch_id

    def _write_outputs(self, worker: str, batch_id: str) -> str | None:
        with self._sessions() as session:
            items = list(session.scalars(select(ItemRow).where(ItemRow.batch_id == batch_id).order_by(ItemRow.line)))
        errors = [item for item in items if is_error(item)]
        successes = [item for item in items if not is_error(item)]
        owner = self.get(batch_id).owner
        output = self.files.create_output(jsonl(map(output_line, successes)), f"{batch_id}_output.jsonl", owner)
        error_file = (
            self.files.create_output(jsonl(map(output_line, errors)), f"{batch_id}_error.jsonl", owner)
            if errors else None
        )
        now = int(self._clock())
        with self._sessions.begin() as session:
            batch = session.get(BatchRow, batch_id)
            assert batch is not None
            final = batch.final_status or states.COMPLETED
            written = session.execute(
                update(BatchRow).where(BatchRow.id == batch_id, BatchRow.status == states.FINALIZING,
                                       BatchRow.finalizer == worker)
                .values(status=final, output_file_id=output.id, error_file_id=error_file.id if error_file else None,
                        **{states.TIMESTAMP_OF[final]: now})
            ).rowcount
        if written == 1:
            return final
        for stored in (output, error_file):  # another finaliser took over meanwhile: its files stand
            if stored is not None:
                self.files.delete(stored.id)
        return None


def _missing_input(file_id: str) -> LineError:
    return LineError(0, "input_file_not_found", f"The input file {file_id!r} was deleted before the batch ran.",
                     "input_file_id")


def _count_lines(path: Any) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
