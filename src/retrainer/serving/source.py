"""Reading the spec's source outside a pipeline run: features to materialize, labels to join."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import Spec


def read_source(spec: Spec) -> pd.DataFrame:
    """Every row the spec's source gives now (`:as_of` is now), read as the extract stage reads it."""
    from retrainer.sources import for_spec

    return for_spec(spec.source).read()


def read_labels(location: str) -> pd.DataFrame:
    """Labels that arrived later: a Parquet/CSV file."""
    from retrainer.sources.files import read_file

    return read_file(location)
