"""The `retrainer` command line. Heavy libraries are imported inside commands so `--help` stays fast.

Exit codes: 0 success (promoted, kept champion, unchanged), 1 unexpected error, 2 usage error,
3 spec, 4 source, 5 data validation rejected, 6 evaluation gate rejected, 7 registry, 8 run store,
9 other stage failure, 130 interrupted.

One module per topic (`run`, `history`, `registry`, `serving`, `project`), what they share in
`shared`; the commands are registered here, in the order `retrainer --help` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from retrainer.cli import history, project, registry, run, serving
from retrainer.cli.shared import state


def _flags_show_no_type() -> None:
    """Typer 0.29 with Click 8.5 shows a `<bool>` placeholder beside every flag (`--force <bool>`), as if
    it took a value; a flag takes none, so its type column stays empty, as it did before."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_retrainer", False):
        return

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._retrainer = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign, assignment]


_flags_show_no_type()

app = typer.Typer(
    name="retrainer",
    help="Retrain models on fresh data; replace the production model only when the new one is proven better.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the outcome line (for cron).")] = False,
) -> None:
    state.update(debug=debug, quiet=quiet)


app.command()(run.run)
app.command()(run.stage)
app.command()(run.validate)
app.command()(history.runs)
app.command()(registry.models)
app.command()(registry.promote)
app.command()(registry.rollback)
app.command()(registry.audit)
app.command()(history.backfill)
app.command("export-model")(registry.export_model)
app.command()(history.report)
app.command()(serving.serve)
app.command("ab-report")(serving.ab_report)
app.command()(project.init)
app.command()(project.doctor)
app.command("explain-spec")(run.explain_spec)

dvc_app = typer.Typer(help="Export the pipeline as a DVC pipeline (dvc.yaml + params.yaml).", no_args_is_help=True)
dvc_app.command("export")(project.dvc_export)
app.add_typer(dvc_app, name="dvc")

airflow_app = typer.Typer(help="Export pipelines as Apache Airflow 3 DAGs.", no_args_is_help=True)
airflow_app.command("export")(project.airflow_export)
app.add_typer(airflow_app, name="airflow")

features_app = typer.Typer(help="Online features in Redis.", no_args_is_help=True)
features_app.command("materialize")(serving.features_materialize)
app.add_typer(features_app, name="features")


def entrypoint() -> None:
    """Console-script entry point."""
    app(prog_name="retrainer")


__all__ = ["app", "entrypoint"]
