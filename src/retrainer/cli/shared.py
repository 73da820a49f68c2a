"""What every command shares: the consoles, the global flags, the common options and the error guard."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.store import RunStore


console = Console(stderr=False, highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
state: dict[str, Any] = {"debug": False, "quiet": False}  # the global flags, set by the app's callback

P = ParamSpec("P")

SpecArg = Annotated[Path, typer.Argument(help="Pipeline spec (YAML).", show_default=False)]
EnvOpt = Annotated[str | None, typer.Option("--env", help="Overlay <spec>.<ENV>.yaml on the spec.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
StoreOpt = Annotated[str, typer.Option("--store", help="Run store (directory or fsspec URL).")]
TrackingOpt = Annotated[
    str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: the store's SQLite DB).")
]
LockOpt = Annotated[
    str | None,
    typer.Option(
        "--lock-url",
        envvar="RETRAINER_LOCK_URL",
        help="PostgreSQL URL whose advisory lock guards the move (the pipelines' promotion.lock_url).",
    ),
]


def guarded(command: Callable[P, int | None]) -> Callable[P, None]:
    """Make a function returning an exit code a command: retrainer's errors become one clear line and
    their exit code, a bug one line and exit 1, Ctrl-C exit 130; tracebacks only with `--debug`."""

    @functools.wraps(command)
    def guarded_command(*args: P.args, **kwargs: P.kwargs) -> None:
        from retrainer.errors import RetrainerError

        try:
            code = command(*args, **kwargs) or 0
        except RetrainerError as error:
            if state["debug"]:
                errors.print_exception()
            # messages carry user values (labels like `[red]`, column names, paths): text, not Rich markup
            errors.print(f"[bold red]error[/] ({type(error).__name__}): {escape(error.message)}")
            if error.hint:
                errors.print(f"[dim]hint: {escape(error.hint)}[/]")
            code = error.exit_code
        except KeyboardInterrupt:
            errors.print("[yellow]interrupted[/]: finished stages are cached; run the same command to resume")
            code = 130
        except Exception as error:  # noqa: BLE001 - a bug: one line, the traceback with --debug
            if state["debug"]:
                errors.print_exception()
            errors.print(f"[bold red]unexpected error[/]: {type(error).__name__}: {escape(str(error))}")
            errors.print("[dim]hint: run again with --debug for the traceback, and please report it[/]")
            code = 1
        raise typer.Exit(code)

    return guarded_command


def open_registry(store: str, tracking_uri: str | None) -> tuple[Registry, RunStore]:
    """The registry at `tracking_uri` (default: the store's SQLite DB) and the run store."""
    from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
    from retrainer.store import RunStore

    run_store = RunStore(store)
    return Registry(tracking_uri or default_tracking_uri(run_store)), run_store


def fmt(value: float | None) -> str:
    """A metric for a table cell: four decimals, empty when missing."""
    return "" if value is None else f"{value:.4f}"
