"""The spec explained from its own pydantic models: `retrainer explain-spec` and the docs' spec reference.

Both read each field's `description` (and each section's docstring) from `retrainer.spec`, so a key
added there is documented everywhere the moment it exists; nothing here is copied by hand.

    >>> from retrainer.spec import Spec
    >>> "source" in reference_markdown(Spec)
    True
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_HIDDEN = {"spec_path"}


def annotated_yaml(spec: BaseModel) -> str:
    """The spec as YAML with every default filled in; each key preceded by what it means.

    Keys the spec file did not set are marked `# default`, so one can see at a glance what was chosen.
    """
    lines: list[str] = []
    doc = _first_paragraph(type(spec).__doc__)
    if doc:
        lines.append(f"# {doc}")
    _model_lines(spec, masked(spec.model_dump(mode="json")), 0, lines)
    return "\n".join(lines) + "\n"


def masked(value: Any) -> Any:
    """Every string with a URL password masked, at any depth: a `${VAR}` the spec interpolated may have put
    a database password into `source.url`, `tracking.uri` or any other URL, and printing the spec must not
    show it. Secret keys (webhook URLs, passwords) are `SecretStr` and dump as asterisks already."""
    from retrainer.urls import safe_url

    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return safe_url(value) if isinstance(value, str) else value


def _model_lines(model: BaseModel, data: dict[str, Any], depth: int, lines: list[str]) -> None:
    indent = "  " * depth
    for name, field in type(model).model_fields.items():
        if name in _HIDDEN or field.exclude:
            continue
        value = getattr(model, name)
        meaning = field_meaning(field)
        if meaning:
            lines.extend(f"{indent}# {line}" for line in _wrap(meaning, 110 - len(indent)))
        note = getattr(model, "default_note", lambda _: None)(name)
        marker = "" if name in model.model_fields_set else f"  # default{f': {note}' if note else ''}"
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:{marker}")
            _model_lines(value, data[name], depth + 1, lines)
        else:
            lines.append(f"{indent}{name}: {_flow(_without_nulls(data[name]))}{marker}")


def _without_nulls(value: Any) -> Any:
    """Inside lists and mappings, unset (null) keys of nested sections are noise: drop them."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _flow(value: Any) -> str:
    """One value as YAML on a single line (flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text.removesuffix("...").strip()


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(width, 40)) or [text]


def field_meaning(field: FieldInfo) -> str:
    """The field's description, or (for a section) the first paragraph of its model's docstring."""
    if field.description:
        return field.description
    models = _nested_models(field.annotation)
    return _first_paragraph(models[0].__doc__) if len(models) == 1 else ""


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else ""


def undocumented_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Key paths under `model` whose meaning cannot be explained (no description, no docstring)."""
    missing = []
    for name, field in model.model_fields.items():
        if name in _HIDDEN:
            continue
        path = f"{prefix}{name}"
        if not field_meaning(field):
            missing.append(path)
        for nested in _nested_models(field.annotation):
            missing += undocumented_fields(nested, f"{path}.")
    return missing


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """Models reachable in an annotation: `Model`, `Model | None`, `list[Model]`, `dict[str, Model]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _nested_models(arg)
    return found


# ------------------------------------------------------------------------------------ markdown


def reference_markdown(model: type[BaseModel]) -> str:
    """A Markdown reference of every section and key: type, default and meaning (for the docs site)."""
    parts = [
        "# Spec reference",
        "",
        "Generated from the pydantic models in `retrainer/spec/` when the docs are built: each key's",
        "meaning is its field description. `retrainer explain-spec SPEC` prints the same for one spec,",
        "with every default filled in.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    parts += _section_markdown(model, "", seen)
    return "\n".join(parts) + "\n"


def _section_markdown(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> list[str]:
    seen.add(model)
    title = f"`{path}`" if path else "Top level"
    lines = [f"## {title}", "", _first_paragraph(model.__doc__), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        if name in _HIDDEN:
            continue
        key = f"{path}.{name}" if path else name
        lines.append(
            f"| `{name}` | {_cell(type_name(field.annotation))} | {_cell(_default_text(field))} "
            f"| {_cell(field_meaning(field))} |"
        )
        nested += [(key, m) for m in _nested_models(field.annotation) if m not in seen]
    lines.append("")
    for key, sub in nested:
        if sub not in seen:
            lines += _section_markdown(sub, key, seen)
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;") if text else ""


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
        if isinstance(value, BaseModel):
            return "(section defaults)"
        return f"`{_flow(value)}`"
    if field.default is PydanticUndefined or field.default is None:
        return ""
    return f"`{_flow(field.default)}`"


def type_name(annotation: Any) -> str:
    """A short, readable type: `int`, `str | None`, `list[str]`, `one of: stratified, temporal`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))
