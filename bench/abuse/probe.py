"""What a server's processes hold and spend: the resident memory and CPU time of every process of its session
(``bentoml serve``) and of their descendants (its workers, which BentoML starts in sessions of their own), sampled
from ``/proc``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def session_pids(session: int) -> list[int]:
    """The processes whose session id is ``session`` (a server started with ``start_new_session``), and their
    descendants in other sessions (BentoML's workers call ``setsid``)."""
    parents: dict[int, int] = {}
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])  # field 4 of stat: the parent
        if int(fields[3]) == session:  # field 6 of stat: the session id
            pids.add(int(entry.name))
    grown = True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in pids and pid not in pids}
        pids |= children
        grown = bool(children)
    return sorted(pids)


def _stat(pid: int) -> tuple[int, float]:
    """(resident bytes, CPU seconds) of one process; (0, 0) once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    return int(fields[21]) * _PAGE, (int(fields[11]) + int(fields[12])) / _TICKS  # rss pages; utime + stime


def resident_and_cpu(session: int) -> tuple[int, float]:
    stats = [_stat(pid) for pid in session_pids(session)]
    return sum(rss for rss, _ in stats), sum(cpu for _, cpu in stats)


class MemoryProbe:
    """Samples the session's resident memory every ``interval_s`` while a case runs: its peak above the level it
    had when the case started, and the CPU time the case cost."""

    def __init__(self, session: int, interval_s: float = 0.05) -> None:
        self.session = session
        self.interval_s = interval_s
        self.start_bytes = 0
        self.peak_bytes = 0
        self._start_cpu = 0.0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MemoryProbe:
        self.start_bytes, self._start_cpu = resident_and_cpu(self.session)
        self.peak_bytes = self.start_bytes
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_bytes = max(self.peak_bytes, resident_and_cpu(self.session)[0])

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        rss, cpu = resident_and_cpu(self.session)
        self.peak_bytes = max(self.peak_bytes, rss)
        self.cpu_s = cpu - self._start_cpu

    @property
    def peak_above_start_mb(self) -> float:
        return (self.peak_bytes - self.start_bytes) / 2**20

    @staticmethod
    def settle(seconds: float = 1.0) -> None:
        """A pause between cases, so that one case's clean-up is not counted in the next."""
        time.sleep(seconds)
