"""The output contract every executor shares.

Under ``--out``:

- ``results/<xx>/<name>.json``: one file per finished id, written atomically (a temporary file in the same folder,
  then ``os.replace``), carrying the id itself, the ``fingerprint`` of what produced it and the result. ``<name>``
  is the id when it is a safe file name, else a readable slug of it and a hash (ids may hold ``/`` or be long);
  ``<xx>`` spreads a million files over 256 folders.
- ``failures/<xx>/<name>.json``: one file per id that failed for good (a 4xx: undecodable, too long, unknown model;
  a missing local file), with the error body, written atomically as results are; never retried while its fingerprint
  is unchanged.
- ``failures.jsonl``: the index of those files, one line each, sorted by id, rebuilt atomically (a temporary file,
  then ``os.replace``) at the end of every run. It is never appended to: several runners (the array tasks of a
  cluster executor, on several hosts sharing one folder over NFS or GPFS) may write failures at the same time, and
  appends from several hosts to one file are not atomic there; one file per id is, as for results. The per-id files
  are the record; the index is a convenience for people and tools, whole whenever it is read.

The resume rule: an id is skipped when its result file, or its failure file, has the fingerprint the manifest's item
has now. The fingerprint covers the audio reference, the model, every option and the output schema version, so
changing any of them redoes the item. In a folder written by an earlier version (a ``failures.jsonl`` and no
``failures/`` folder), the index's entries are carried over into per-id files. To run a failed item again, delete
its failure file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifest import Item

SCHEMA_VERSION = 1
"""The layout of a result file; bump it when the layout changes, and every item is redone."""
RESULTS_DIR = "results"
FAILURES_DIR = "failures"
FAILURES_FILE = "failures.jsonl"
TEMPORARY_SUFFIX = ".tmp"
STALE_TEMPORARY_S = 3600.0
"""A temporary file of another host (a shared output folder) older than this is a leftover of a killed runner."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_HOST = socket.gethostname().replace(".", "_")  # no dots: the temporary names are split on them


@dataclass(frozen=True)
class RunDefaults:
    """What an item that names no model or format gets (the command line's ``--model``, ``--response-format``).
    An item with ``diarize`` gets ``diarized_json`` unless it asks for ``jsonl``: the formats that carry speakers."""

    model: str | None = None
    response_format: str = "verbose_json"

    def apply(self, item: Item) -> Item:
        response_format = item.response_format or self.response_format
        if item.diarize and response_format not in ("diarized_json", "jsonl"):
            response_format = "diarized_json"
        return item.model_copy(update={"model": item.model or self.model, "response_format": response_format})


def fingerprint(item: Item) -> str:
    """sha256 of the output schema version, the audio reference, the model and every option of ``item`` (after
    ``RunDefaults.apply``): equal fingerprints, equal work."""
    payload = {"schema": SCHEMA_VERSION, "audio": item.audio, "options": item.options()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def file_name(item_id: str) -> str:
    """A file name for any id: the id itself when it is safe, else a slug of it, ``~`` and a hash of it (``~`` is
    never in a safe name, so two ids never share a file)."""
    if _SAFE_NAME.fullmatch(item_id) and not item_id.endswith(TEMPORARY_SUFFIX):
        return f"{item_id}.json"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("._-")[:60]
    return f"{slug}~{hashlib.sha256(item_id.encode()).hexdigest()[:24]}.json"


def shard(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()[:2]


@dataclass
class Outputs:
    """One output folder: where each id's result or failure goes, what is finished already, the failures index."""

    root: Path
    _failed: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        (self.root / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
        earlier_version = not (self.root / FAILURES_DIR).exists()
        (self.root / FAILURES_DIR).mkdir(exist_ok=True)
        self._failed = self._read_failures(carry_over_index=earlier_version)

    @property
    def failures_path(self) -> Path:
        """The index, ``failures.jsonl``."""
        return self.root / FAILURES_FILE

    def path_for(self, item_id: str) -> Path:
        return self.root / RESULTS_DIR / shard(item_id) / file_name(item_id)

    def failure_path_for(self, item_id: str) -> Path:
        return self.root / FAILURES_DIR / shard(item_id) / file_name(item_id)

    def is_finished(self, item: Item) -> bool:
        """The resume rule: a result or a recorded failure with this item's fingerprint."""
        return self._failed.get(item.id) == fingerprint(item) or self.read_result(item) is not None

    def read_result(self, item: Item) -> dict[str, Any] | None:
        """``item``'s result file when it holds this item's fingerprint, else None."""
        written = _read_json(self.path_for(item.id))
        if written is None or written.get("id") != item.id or written.get("fingerprint") != fingerprint(item):
            return None
        return written

    def read_failure(self, item: Item) -> dict[str, Any] | None:
        """``item``'s failure file when it holds this item's fingerprint (read from disk: another runner's count
        too), else None."""
        written = _read_json(self.failure_path_for(item.id))
        if written is None or written.get("id") != item.id or written.get("fingerprint") != fingerprint(item):
            return None
        return written

    def pending(self, items: Iterable[Item]) -> list[Item]:
        return [item for item in items if not self.is_finished(item)]

    def write_result(self, item: Item, record: dict[str, Any]) -> Path:
        """Write ``record`` (the executor's result) as ``item``'s output, atomically: a reader sees the whole
        file or none."""
        path = self.path_for(item.id)
        path.parent.mkdir(exist_ok=True)
        content = {"id": item.id, "fingerprint": fingerprint(item), "schema_version": SCHEMA_VERSION,
                   "audio": item.audio, "options": item.options(), **record}
        _write_atomically(path, json.dumps(content, ensure_ascii=False, indent=1) + "\n")
        return path

    def record_failure(self, item: Item, status: int | None, error: Any) -> bool:
        """Write ``item``'s permanent failure to its own file, atomically, once per id and fingerprint; False when it
        was recorded already (by this runner, an earlier one, or another runner on the same folder)."""
        expected = fingerprint(item)
        with self._lock:
            if self._failed.get(item.id) == expected or self.read_failure(item) is not None:
                self._failed[item.id] = expected
                return False
            self._write_failure({"id": item.id, "fingerprint": expected, "audio": item.audio, "status": status,
                                 "error": error})
            self._failed[item.id] = expected
        return True

    def failed_ids(self) -> set[str]:
        return set(self._failed)

    def failure_files(self) -> list[Path]:
        return sorted((self.root / FAILURES_DIR).glob("*/*.json"))

    def failures(self) -> list[dict[str, Any]]:
        """Every recorded failure (the per-id files, read now: other runners' too), sorted by id."""
        entries = [entry for path in self.failure_files() if (entry := _read_json(path)) is not None]
        return sorted(entries, key=lambda entry: str(entry.get("id")))

    def rebuild_failures_index(self) -> Path:
        """Rewrite ``failures.jsonl`` from the per-id failure files, atomically. Two runners rebuilding at once each
        write a whole index; the last to finish has seen every failure written before it started."""
        lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in self.failures())
        _write_atomically(self.failures_path, lines)
        return self.failures_path

    def remove_leftover_temporaries(self) -> list[Path]:
        """Delete the temporary files a killed runner left: this host's whose process is gone, and any older than
        ``STALE_TEMPORARY_S`` (another host's, in a shared folder)."""
        removed = []
        for path in self.temporaries():
            if _is_leftover(path):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def temporaries(self) -> list[Path]:
        """Every temporary file in the folder: of results, of failures, of the index."""
        return sorted([*(self.root / RESULTS_DIR).glob(f"*/.*{TEMPORARY_SUFFIX}"),
                       *(self.root / FAILURES_DIR).glob(f"*/.*{TEMPORARY_SUFFIX}"),
                       *self.root.glob(f".*{TEMPORARY_SUFFIX}")])

    def result_files(self) -> list[Path]:
        return sorted((self.root / RESULTS_DIR).glob("*/*.json"))

    def _write_failure(self, entry: dict[str, Any]) -> None:
        path = self.failure_path_for(entry["id"])
        path.parent.mkdir(exist_ok=True)
        _write_atomically(path, json.dumps(entry, ensure_ascii=False, indent=1) + "\n")

    def _read_failures(self, carry_over_index: bool) -> dict[str, str]:
        failed: dict[str, str] = {}
        for entry in self.failures():
            try:
                failed[entry["id"]] = entry["fingerprint"]
            except (KeyError, TypeError):
                continue
        # A folder of an earlier version: its index is the record. (Otherwise the per-id files are: deleting one to
        # run that item again works even before the index is rebuilt.)
        for entry in self._index_entries() if carry_over_index else ():
            if entry["id"] not in failed:
                self._write_failure(entry)
                failed[entry["id"]] = entry["fingerprint"]
        return failed

    def _index_entries(self) -> list[dict[str, Any]]:
        if not self.failures_path.exists():
            return []
        entries = []
        for line in self.failures_path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                if isinstance(entry["id"], str) and isinstance(entry["fingerprint"], str):
                    entries.append(entry)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a runner of an earlier version: its item is simply run again
        return entries


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _write_atomically(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.stem[:40]}.{_HOST}-{os.getpid()}.", suffix=TEMPORARY_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _is_leftover(path: Path) -> bool:
    match = re.search(r"\.([^.]+)-(\d+)\.[^.]*\.tmp$", path.name)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if match and match.group(1) == _HOST:
        return not _process_alive(int(match.group(2))) or age > STALE_TEMPORARY_S
    return age > STALE_TEMPORARY_S


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
