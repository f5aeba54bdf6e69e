"""What a long build shows while it runs: a bar on a terminal, one line per step in a CI log."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 28
LOG_STEP = 0.1  # a plain line at every tenth of the pages


class Progress:
    """Reports (done, total) pages with pages per second and time left."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.started = time.perf_counter()
        self.next_log = LOG_STEP
        self.last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Show progress after `done` of `total` pages are rendered."""
        if total <= 0:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        rate = done / elapsed
        left = (total - done) / rate if rate else 0.0
        share = done / total
        if self.interactive:
            if done < total and elapsed - self.last_draw < 0.1:
                return
            self.last_draw = elapsed
            filled = int(BAR_WIDTH * share)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r[{bar}] {done:,}/{total:,} pages  {rate:,.0f}/s  {left:,.0f} s left {end}")
        elif share >= self.next_log or done >= total:
            while self.next_log <= share:
                self.next_log += LOG_STEP
            self.stream.write(f"rendered {done:,}/{total:,} pages ({share:.0%}), {rate:,.0f} pages/s, "
                              f"{left:,.0f} s left\n")
        self.stream.flush()
