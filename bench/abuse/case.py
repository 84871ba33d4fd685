"""One abuse case: a name, what it sends, and what the run found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """The server under attack."""

    url: str
    api_key: str
    corpus_dir: Path
    work_dir: Path
    """A folder the case may write its inputs to."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Outcome:
    statuses: list[str] = field(default_factory=list)
    """What the server answered (HTTP statuses, close codes, event types), in order or counted."""
    notes: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Target], Outcome]
    target: str = ""
    """The issue's target for this case, in words."""
