"""Load-time checks of a spec that need what `retrainer.spec` must not import (the tasks import the spec).

A check takes the `Spec` being validated and gives its problem in words, or None; the spec's model
validator raises it like any other validation error (one line, with where it is). `retrainer.tasks`
adds its check when imported, and `retrainer/__init__.py` imports the tasks, so every spec is checked.
A leaf module (it imports nothing), so that importing the tasks does not import pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SPEC_CHECKS: list[Callable[[Any], str | None]] = []  # each gets the Spec: typed Any, as importing it closes a cycle
