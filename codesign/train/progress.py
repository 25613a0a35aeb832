"""Progress on stderr: a rich bar on a terminal, plain lines (one per epoch or run) otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class Reporter:
    """Context manager that advances a bar per batch and logs a line per epoch, on stderr."""

    def __init__(self, label: str, total: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and sys.stderr.isatty()
        self.progress: Optional[Progress] = None
        self.task = None
        self.label, self.total = label, total

    def __enter__(self) -> Reporter:
        if self.live:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"),
                                     TimeRemainingColumn(), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=self.total)
        return self

    def advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)

    def update(self, done: int, total: int) -> None:
        """Set the bar to ``done`` of ``total`` units (for callers that report absolute
        progress, e.g. samples run so far)."""
        self.total = total
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done, total=total)

    def log(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, highlight=False, soft_wrap=True)

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self.progress is not None:
            self.progress.stop()
