"""Rich progress for the CLI: one line per stage, and a bar per candidate while tuning."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

_STATUS_STYLE = {"ran": "green", "cached": "cyan", "rejected": "yellow", "failed": "red", "interrupted": "red"}


class RichReporter:
    """Implements `retrainer.pipeline.Reporter` with a live Rich display."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self._live = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[detail]}"),
            console=console,
            transient=True,
        )
        self._stage_task: TaskID | None = None
        self._bars: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> RichReporter:
        self.console.print(f"[bold]retrainer[/] {self.title}")
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._live.stop()

    def stage_started(self, stage: str) -> None:
        self._stage_task = self._live.add_task(f"[bold]{stage}[/]", total=None, detail="")

    def stage_finished(self, stage: str, status: str, seconds: float, summary: str) -> None:
        for key in [k for k in self._bars if k[0] == stage]:
            self._live.remove_task(self._bars.pop(key))
        if self._stage_task is not None:
            self._live.remove_task(self._stage_task)
            self._stage_task = None
        style = _STATUS_STYLE.get(status, "white")
        # a summary names columns and labels, which may hold brackets: text, not Rich markup
        self.console.print(f"  [{style}]{status:>7}[/] {stage:<9} {seconds:6.1f}s  [dim]{escape(summary)}[/]")

    def progress(self, stage: str, label: str, done: int, total: int | None, detail: str = "") -> None:
        key = (stage, label)
        if key not in self._bars:
            self._bars[key] = self._live.add_task(f"  {label}", total=total, detail=detail)
        self._live.update(self._bars[key], completed=done, total=total, detail=detail)
