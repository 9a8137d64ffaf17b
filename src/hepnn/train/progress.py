"""A rich progress bar for one epoch with loss and jets/s (silent when disabled or not a terminal)."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hepnn.log import console


class EpochProgress:
    def __init__(self, description: str, total: int | None, enabled: bool = True) -> None:
        self.enabled = enabled and console.is_terminal
        self.description, self.total = description, total
        self._progress: Progress | None = None

    def __enter__(self) -> "EpochProgress":
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  {task.fields[jets_per_s]:,.0f} jets/s"),
                TimeRemainingColumn(), console=console, transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, loss=0.0, jets_per_s=0.0)
        return self

    def advance(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, **fields)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
