"""The output contract every executor shares.

Under ``--out``:

- ``results/<xx>/<name>.json``: one file per finished id, written atomically (a temporary file in the same folder,
  then ``os.replace``), carrying the id itself, the ``fingerprint`` of what produced it and the result. ``<name>``
  is the id when it is a safe file name, else a readable slug of it and a hash (ids may hold ``/`` or be long);
  ``<xx>`` spreads a million files over 256 folders.
- ``failures.jsonl``: one line per id that failed for good (a 4xx: undecodable, too long, unknown model; a missing
  local file), with the error body; never retried while its fingerprint is unchanged.

The resume rule: an id is skipped when its output file, or its line in ``failures.jsonl``, has the fingerprint the
manifest's item has now. The fingerprint covers the audio reference, the model, every option and the output
schema version, so changing any of them redoes the item.
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
    """One output folder: where each id's result goes, what is done already, the failures file."""

    root: Path
    _failed: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        (self.root / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
        self._failed = self._read_failures()

    @property
    def failures_path(self) -> Path:
        return self.root / FAILURES_FILE

    def path_for(self, item_id: str) -> Path:
        return self.root / RESULTS_DIR / shard(item_id) / file_name(item_id)

    def is_finished(self, item: Item) -> bool:
        """The resume rule: a result or a recorded failure with this item's fingerprint."""
        expected = fingerprint(item)
        if self._failed.get(item.id) == expected:
            return True
        try:
            written = json.loads(self.path_for(item.id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return written.get("id") == item.id and written.get("fingerprint") == expected

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
        """Append ``item``'s permanent failure to ``failures.jsonl``, once per id and fingerprint; False when it was
        there already."""
        expected = fingerprint(item)
        line = json.dumps({"id": item.id, "fingerprint": expected, "audio": item.audio, "status": status,
                           "error": error}, ensure_ascii=False)
        with self._lock:
            if self._failed.get(item.id) == expected:
                return False
            with self.failures_path.open("a", encoding="utf-8") as failures:
                failures.write(line + "\n")
                failures.flush()
                os.fsync(failures.fileno())
            self._failed[item.id] = expected
        return True

    def failed_ids(self) -> set[str]:
        return set(self._failed)

    def remove_leftover_temporaries(self) -> list[Path]:
        """Delete the temporary files a killed runner left: this host's whose process is gone, and any older than
        ``STALE_TEMPORARY_S`` (another host's, in a shared folder)."""
        removed = []
        for path in (self.root / RESULTS_DIR).glob(f"*/.*{TEMPORARY_SUFFIX}"):
            if _is_leftover(path):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def temporaries(self) -> list[Path]:
        return sorted((self.root / RESULTS_DIR).glob(f"*/.*{TEMPORARY_SUFFIX}"))

    def result_files(self) -> list[Path]:
        return sorted((self.root / RESULTS_DIR).glob("*/*.json"))

    def _read_failures(self) -> dict[str, str]:
        failed: dict[str, str] = {}
        if not self.failures_path.exists():
            return failed
        for line in self.failures_path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                failed[entry["id"]] = entry["fingerprint"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed runner: its item is simply run again
        return failed


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
