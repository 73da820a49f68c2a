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


def _flags_take_no_value() -> None:
    """Typer 0.2x shows a type beside every option, flags included (`--force <bool>`, even `--help
    <bool>`), which reads as if the flag wanted a value. A flag takes none: show no type for it."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_blank", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_blank = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

console = Console(stderr=False, highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
state: dict[str, Any] = {"debug": False, "quiet": False}  # the global flags, set by the app's callback

P = ParamSpec("P")

SpecArg = Annotated[Path, typer.Argument(help="Pipeline spec (YAML).", show_default=False)]
EnvOpt = Annotated[str | None, typer.Option("--env", help="Overlay <spec>.<ENV>.yaml on the spec.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="RETRAINER_STORE",
        help="Run store (directory or fsspec URL). Default: the nearest .retrainer/ here or in a folder above.",
        show_default=False,
    ),
]
STORE_DIR = ".retrainer"
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


def find_store(store: str | None) -> RunStore:
    """The run store a command reads: --store (or RETRAINER_STORE), else the nearest `.retrainer/` in
    the working directory or a folder above it, as git finds `.git`. Never creates one: reading an
    empty new store would answer "no versions" for a typo'd folder. `StoreNotFound` (exit 11) instead."""
    from retrainer.errors import StoreNotFound
    from retrainer.store import RunStore

    if store is None:
        here = Path.cwd().resolve()
        found = next((folder / STORE_DIR for folder in (here, *here.parents) if (folder / STORE_DIR).is_dir()), None)
        if found is None:
            raise StoreNotFound(
                f"no run store: no {STORE_DIR}/ in {here} or a folder above it",
                hint="run it in the pipeline's folder, or pass --store PATH (or set RETRAINER_STORE)",
            )
        return RunStore(str(found))
    if "://" not in store and not Path(store).is_dir():
        raise StoreNotFound(
            f"no run store at {store}", hint="check --store (or RETRAINER_STORE): it names no existing directory"
        )
    return RunStore(store)


def open_registry(store: str | None, tracking_uri: str | None) -> tuple[Registry, RunStore]:
    """The registry at `tracking_uri` (default: the store's SQLite DB) and the run store (`find_store`)."""
    from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri

    run_store = find_store(store)
    return Registry(tracking_uri or default_tracking_uri(run_store)), run_store


def fmt(value: float | None) -> str:
    """A metric for a table cell: four decimals, empty when missing."""
    return "" if value is None else f"{value:.4f}"
