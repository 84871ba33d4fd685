"""The background worker of one replica: reads the batches waiting for validation, claims items one at a time per
thread (``workers`` threads: the per-replica cap) when their model has room for background work, runs them through
the runner it is given (the synchronous route's own path, wired by the server), records their outcomes, and
finalises the batches whose items are all done. A heartbeat renews the leases of the items it runs.

``should_claim`` says whether to take new work (False once the server drains): running items finish, nothing new
starts. Lower priority than interactive requests is the runner's to keep (``ItemRunner.has_room`` and its
background leases on the model pool).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import states
from .batches import BatchStore, ClaimedItem, Outcome

logger = logging.getLogger("stt.jobs")


class ItemRunner(Protocol):
    def check(self, endpoint: str, body: dict[str, Any], owner: str | None = None) -> None:
        """The endpoint's check of a line's body for the batch's owner (validation, before anything runs)."""

    def has_room(self, body: dict[str, Any]) -> bool:
        """Whether the item's model takes background work now."""

    def run(self, item: ClaimedItem) -> Outcome:
        """The item's answer, errors included (never raises for the request's own faults)."""


@dataclass(frozen=True)
class WorkerSettings:
    workers: int = 1
    """Items one replica runs at once."""
    poll_s: float = 1.0
    """How often an idle worker looks for work (and for batches to validate or finalise)."""


class BatchWorker:
    def __init__(
        self,
        store: BatchStore,
        runner: ItemRunner,
        settings: WorkerSettings = WorkerSettings(),
        should_claim: Callable[[], bool] = lambda: True,
        on_ended: Callable[[str, str], None] = lambda batch_id, status: None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.settings = settings
        self.should_claim = should_claim
        self.on_ended = on_ended
        """Told each batch this replica ended (failed, completed, cancelled, expired), once per batch across replicas:
        the webhooks' sender, which must not block."""
        self.name = f"replica-{secrets.token_hex(6)}"
        """This replica's name on the items it claims."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-worker-{index}", daemon=True)
            for index in range(max(1, self.settings.workers))
        ]
        self._threads.append(threading.Thread(target=self._heartbeat, name="batch-leases", daemon=True))
        for thread in self._threads:
            thread.start()
        logger.info("batch worker %s started (%d at a time)", self.name, self.settings.workers)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop claiming; wait up to ``timeout_s`` for the running items (an item cut short is run again elsewhere
        once its lease passes)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def step(self) -> bool:
        """One round of work: validate a batch, run one item, finalise what is done. True when it did something
        (the loop goes on at once)."""
        worked = False
        ended: list[tuple[str, str]] = []
        if self.should_claim():
            if (validated := self.store.validate_next(self.runner.check)) is not None:
                worked = True
                if validated[1] == states.FAILED:
                    ended.append(validated)
            item = self.store.claim(self.name, self.runner.has_room)
            if item is not None:
                self._run(item)
                worked = True
        ended += self.store.settle(self.name)
        for batch_id, status in ended:
            try:
                self.on_ended(batch_id, status)
            except Exception:
                logger.exception("telling of batch %s's end failed", batch_id)
        return worked or bool(ended)

    def _run(self, item: ClaimedItem) -> None:
        with self._lock:
            self._running.add(item.id)
        try:
            try:
                outcome = self.runner.run(item)
            except Exception:  # the runner answers the request's faults; anything else is the server's
                logger.exception("batch %s line %s failed", item.batch_id, item.custom_id)
                outcome = Outcome(500, {"error": {"message": "The server failed to run this line.",
                                                  "type": "server_error", "param": None, "code": None}})
            if not self.store.finish(self.name, item.id, outcome):
                logger.warning("batch %s item %s: lease lost, its outcome is another replica's", item.batch_id, item.id)
        finally:
            with self._lock:
                self._running.discard(item.id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except Exception:
                logger.exception("batch worker step failed")
                worked = False
            if not worked:
                self._stop.wait(self.settings.poll_s)

    def _heartbeat(self) -> None:
        interval = max(self.store.limits.lease_s / 3, 0.05)
        while not self._stop.wait(interval):
            with self._lock:
                running = list(self._running)
            try:
                self.store.renew(self.name, running)
            except Exception:
                logger.exception("renewing batch item leases failed")
