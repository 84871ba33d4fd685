"""The progress bar (tqdm): items, audio hours done, failures, retries, and tqdm's own rate and ETA."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, enabled: bool = True) -> None:
        self._bar = tqdm(total=total, unit="item", dynamic_ncols=True, disable=not enabled, file=sys.stderr,
                         desc="bulk")
        self.audio_s = 0.0
        self.failed = 0
        self.gave_up = 0

    def advance(self, audio_s: float = 0.0, failed: bool = False, gave_up: bool = False, retries: int = 0) -> None:
        self.audio_s += audio_s
        self.failed += failed
        self.gave_up += gave_up
        self._bar.set_postfix(audio_h=f"{self.audio_s / 3600:.2f}", failed=self.failed, gave_up=self.gave_up,
                              retries=retries, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
