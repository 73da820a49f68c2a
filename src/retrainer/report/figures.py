"""What every plot module shares: a pyplot-free matplotlib figure, its PNG bytes, colours, and `Scored`."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

CHALLENGER, CHAMPION, BAD = "#1f77b4", "#ff7f0e", "#d62728"


def figure(width: float = 5.0, height: float = 4.0, columns: int = 1) -> tuple[Figure, Any]:
    """A figure and its axes (an array of `columns` axes when more than one)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    drawn = Figure(figsize=(width, height), dpi=90)
    return drawn, drawn.subplots(1, columns) if columns > 1 else drawn.add_subplot()


def png(drawn: Figure) -> bytes:
    buffer = io.BytesIO()
    drawn.tight_layout()
    drawn.savefig(buffer, format="png")
    return buffer.getvalue()


def annotate_cells(axes: Any, matrix: np.ndarray, fmt: str, fontsize: float) -> None:
    """Write each cell's value on a heat map, white on the dark cells."""
    high = float(matrix.max()) if matrix.size else 0.0
    for row in range(matrix.shape[0]):
        for col in range(matrix.shape[1]):
            value = matrix[row, col]
            colour = "white" if value > high / 2 else "black"
            axes.text(col, row, format(value, fmt), ha="center", va="center", color=colour, fontsize=fontsize)


def short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


@dataclass(frozen=True)
class Scored:
    """The test set as a plot module reads it: truth, the task's output and what names its parts.

    `y` is the encoded target (0/1, class codes, values), `output` is `Task.predict`'s, `classes`
    the class names in code order (empty for a regressor), `segments` the test rows' group labels
    per slice column of `evaluation.slices` (empty when the spec names none), `rows` the model's inputs.
    """

    y: np.ndarray
    output: np.ndarray
    threshold: float
    classes: list[str] = field(default_factory=list)
    segments: dict[str, pd.Series] = field(default_factory=dict)
    rows: pd.DataFrame | None = None  # the test rows' model inputs, where a plot names features (anomalies)
