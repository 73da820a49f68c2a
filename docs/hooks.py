"""MkDocs hooks: the reference pages are generated from the code at build time, never copied by hand.

- `reference/spec.md` from the pydantic models in `retrainer/spec/` (each field's description);
- `reference/cli.md` from the Typer app of the `retrainer/cli/` package (each command's help and options);
- the `<!-- generated: NAME -->` markers in hand-written pages: the exit codes (from `retrainer/errors.py`)
  and the stages (from `retrainer.stages.default_pipeline()`).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from mkdocs.structure.files import File, Files

_MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


def on_files(files: Files, config: Any) -> Files:
    from retrainer.spec import Spec
    from retrainer.spec_reference import reference_markdown

    files.append(File.generated(config, "reference/spec.md", content=reference_markdown(Spec)))
    files.append(File.generated(config, "reference/cli.md", content=cli_markdown()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return _MARKER.sub(lambda match: GENERATORS[match.group(1)](), markdown)


# ------------------------------------------------------------------------------------------ CLI


def cli_markdown() -> str:
    import typer.main

    from retrainer.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# Command reference",
        "",
        "Generated from the Typer app in `retrainer/cli/` when the docs are built; `retrainer COMMAND --help`",
        "prints the same. Global options (`--debug`, `--quiet`) go before the command: `retrainer -q run SPEC`.",
        "",
    ]

    def emit(command: Any, names: list[str], parent: Any) -> None:
        # Typer ships its own copy of click (typer._click): use the command's own Context class
        context = command.context_class(command, info_name=names[-1], parent=parent)
        lines.extend([f"## `{' '.join(names)}`", "", inspect.cleandoc(command.help or ""), ""])
        lines.extend(["```text", command.get_usage(context), "```", ""])
        rows = []
        for param in command.get_params(context):
            record = param.get_help_record(context)
            if record is None:
                continue
            name, text = record
            rows.append(f"| `{name}` | {_cell(_strip_markup(text))} |")
        if rows:
            lines.extend(["| option or argument | meaning |", "|---|---|", *rows, ""])
        if hasattr(command, "list_commands"):
            for sub_name in command.list_commands(context):
                sub = command.get_command(context, sub_name)
                if sub is not None and not sub.hidden:
                    emit(sub, [*names, sub_name], context)

    emit(root, ["retrainer"], None)
    return "\n".join(lines) + "\n"


def _strip_markup(text: str) -> str:
    return re.sub(r"\[/?[a-z ]+\]", "", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------- exit codes


def exit_codes_table() -> str:
    from retrainer import errors

    rows = [
        "| exit code | error | what it means | how to fix it |",
        "|---|---|---|---|",
        "| 0 | | promoted, kept the champion, or unchanged | |",
    ]
    # classes that set their own exit code (RejectedError only groups the two rejections)
    classes = [c for c in _error_classes(errors.RetrainerError) if "exit_code" in c.__dict__]
    for cls in sorted(classes, key=lambda c: (c.exit_code, c.__name__)):
        meaning = " ".join(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].split())
        fix = cls.__dict__.get("fix", "the message's `hint:` line says what to do")
        rows.append(f"| {cls.exit_code} | `{cls.__name__}` | {_cell(meaning)} | {_cell(fix)} |")
    rows += [
        "| 2 | | command-line usage error | `retrainer COMMAND --help` |",
        "| 130 | | interrupted (Ctrl-C) | run the same command again: finished stages are cached |",
    ]
    return "\n".join(rows)


def _error_classes(root: type) -> list[type]:
    found = [root]
    for sub in root.__subclasses__():
        found += _error_classes(sub)
    return found


# ------------------------------------------------------------------------------------- stages


def stages_table() -> str:
    import importlib

    from retrainer.stages import default_pipeline

    pipeline = default_pipeline()
    rows = ["| stage | needs | makes | spec sections | cached | what it does |", "|---|---|---|---|---|---|"]
    stages = [*pipeline.stages, *([pipeline.final] if pipeline.final else [])]
    for stage in stages:
        doc = importlib.import_module(stage.func.__module__).__doc__ or ""
        first = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
        rows.append(
            f"| `{stage.name}` | {', '.join(stage.needs)} | {', '.join(stage.makes)} | "
            f"{', '.join(stage.spec_sections)} | {'yes' if stage.cacheable else 'no'} | {_cell(first)} |"
        )
    return "\n".join(rows)


GENERATORS = {"exit-codes": exit_codes_table, "stages": stages_table}
