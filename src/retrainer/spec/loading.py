"""Loading a spec: YAML, `${VAR}` interpolation, `--env` overlays, relative paths, and readable errors."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from retrainer.errors import SpecError
from retrainer.spec.common import _did_you_mean
from retrainer.spec.operations import SECRET_KEYS
from retrainer.spec.root import Spec
from retrainer.strict_yaml import DuplicateKeyError, parse_yaml

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_spec(path: str | os.PathLike[str], env: str | None = None) -> Spec:
    """Read, interpolate, overlay and validate a spec file; raise SpecError with the key path on failure."""
    spec_path = Path(path)
    raw = read_yaml(spec_path)
    if env:
        overlay_path = spec_path.with_name(f"{spec_path.stem}.{env}{spec_path.suffix}")
        if not overlay_path.exists():
            raise SpecError(
                f"{overlay_path}: overlay for --env {env} not found", hint=f"create {overlay_path.name} or drop --env"
            )
        raw = deep_merge(raw, read_yaml(overlay_path))
    raw = _interpolate(raw, spec_path, ())
    _resolve_relative_paths(raw, spec_path.parent)
    raw["spec_path"] = str(spec_path.resolve())
    return spec_from_dict(raw, origin=str(spec_path))


def expand_projects(paths: list[Path]) -> list[Path]:
    """Spec paths, with each project file (`pipelines: [a.yaml, b.yaml]`) replaced by the specs it lists.

    A project file groups pipelines that are scheduled together (the Airflow master DAG runs them);
    its paths are relative to the project file.
    """
    expanded: list[Path] = []
    for path in paths:
        raw = read_yaml(Path(path))
        if "pipelines" not in raw:
            expanded.append(Path(path))
            continue
        listed = raw["pipelines"]
        if set(raw) != {"pipelines"} or not isinstance(listed, list) or not listed:
            raise SpecError(f"{path}: a project file has one key, 'pipelines', listing spec files")
        expanded += [Path(path).parent / str(item) for item in listed]
    return expanded


def spec_from_dict(data: dict[str, Any], origin: str = "<dict>") -> Spec:
    """Validate a plain dict as a Spec (the Python API's entry point)."""
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            _format_validation_error(exc, origin), hint="see `retrainer validate --help` and docs/spec.md"
        ) from None


def _read_text(path: Path) -> str:
    """The file's text as UTF-8, or a SpecError that says why it is not one."""
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a spec file", hint="give the path of the YAML file in it")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(f"{path}: the file is UTF-16; specs are read as UTF-8", hint="save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})", hint="save it as UTF-8"
        ) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """A spec file's top-level mapping; every way a file can fail to be one is a SpecError naming it."""
    if not path.exists():
        raise SpecError(f"{path}: spec file not found", hint="check the path, or create one with `retrainer init`")
    text = _read_text(path)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, DuplicateKeyError):
            raise SpecError(f"{path}{where}: {problem}", hint="keep one of the two, merging what each sets") from None
        raise SpecError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        raise SpecError(f"{path}: the spec file is empty", hint="write the spec, or create one with `retrainer init`")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a YAML mapping (key: value), got {type(data).__name__}")
    return data


def _interpolate(value: Any, path: Path, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path, (*keys, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path, (*keys, str(i))) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise SpecError(
            f"{path}: {'.'.join(keys)}: environment variable {name} is not set",
            hint=f"export {name}=... or write ${{{name}:-default}} in the spec",
        )

    return _ENV_PATTERN.sub(replace, value)


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    source = raw.get("source")
    if not isinstance(source, dict):
        return
    file_path = source.get("path")
    if isinstance(file_path, str) and "://" not in file_path and not Path(file_path).is_absolute():
        source["path"] = str((base / file_path).resolve())
    url = source.get("url")
    if isinstance(url, str) and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        db_file = url.removeprefix("sqlite:///")
        if db_file and db_file != ":memory:":
            source["url"] = "sqlite:///" + str((base / db_file).resolve())


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _model_for_path(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Spec
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def _key_text(part: object) -> str:
    """A key as it reads in the spec; quoted when it has whitespace or control characters, so the error
    stays one line and an invisible key can be seen ('\\n', ' name')."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


# pydantic's names for validators and union members in an error's path: not keys the user wrote
HIDDEN_LOC_PARTS = ("function-after", "function-before", "builtin-candidate", "own-estimator")


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p not in HIDDEN_LOC_PARTS)
        key = ".".join(_key_text(p) for p in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            parent = _model_for_path(loc[:-1])
            known = list(parent.model_fields) if parent else []
            known = [k for k in known if k != "spec_path"]
            lines.append(f"{key}: unknown key{_did_you_mean(str(loc[-1]), known)}")
        elif error["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            got = error.get("input")
            hidden = isinstance(got, dict | list) or got is None or bool(SECRET_KEYS & set(map(str, loc)))
            shown = "" if hidden else f" (got {got!r})"
            lines.append(f"{key}: {message}{shown}")
    noun = "error" if len(lines) == 1 else "errors"
    return f"{origin}: {len(lines)} spec {noun}: " + "; ".join(lines)
