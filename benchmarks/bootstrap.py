"""Paired bootstrap: the vectorised ROC-AUC and PR-AUC against one scikit-learn call per resample.

    .venv/bin/python benchmarks/bootstrap.py [--rows 1409] [--resamples 1000] [--capped 200000,2000000]
        [--cap 100000]

Scores are random (the arithmetic's cost does not depend on how good a model is); the row count
defaults to the Telco test set. Both sides run in one invocation on the same resamples, and the
script checks that they agree before it prints the times.

Then, for each `--capped` row count, the paired bootstrap of ROC-AUC on all rows (the full
bootstrap) against the m-out-of-n one with `--cap` rows per resample (`promotion.bootstrap_rows`):
seconds and the width of the interval of the gain. Here the two models' scores are noisy readings
of one signal, so the gain has a real spread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from retrainer.evidence import paired_bootstrap, resample_counts, weighted_average_precision, weighted_roc_auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1409)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--capped", default="200000,2000000", help="row counts for full vs capped; '' for none")
    parser.add_argument("--cap", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y, proba = rng.integers(0, 2, args.rows), np.round(rng.random(args.rows), 3)
    counts = resample_counts(args.rows, args.resamples, seed=1)
    for name, vectorised, reference in (
        ("roc_auc", weighted_roc_auc, lambda w: roc_auc_score(y, proba, sample_weight=w)),
        ("pr_auc", weighted_average_precision, lambda w: average_precision_score(np.repeat(y, w), np.repeat(proba, w))),
    ):
        started = time.perf_counter()
        fast = vectorised(y, proba, counts)
        fast_seconds = time.perf_counter() - started
        started = time.perf_counter()
        slow = np.array([reference(w) for w in counts])
        slow_seconds = time.perf_counter() - started
        assert np.allclose(fast, slow), f"{name}: vectorised and scikit-learn disagree"
        print(
            f"{name}: {args.resamples} resamples of {args.rows} rows: vectorised {fast_seconds:.3f}s, "
            f"scikit-learn per resample {slow_seconds:.3f}s ({slow_seconds / fast_seconds:.0f}x)"
        )
    started = time.perf_counter()
    paired_bootstrap("roc_auc", y, proba, rng.random(args.rows), n_bootstrap=args.resamples)
    print(f"paired_bootstrap(roc_auc), both models: {time.perf_counter() - started:.3f}s")
    for rows in [int(r) for r in args.capped.split(",") if r]:
        full_vs_capped(rows, args.cap, args.resamples)


def full_vs_capped(rows: int, cap: int, resamples: int) -> None:
    rng = np.random.default_rng(rows)
    signal = rng.normal(size=rows)
    y = (signal + rng.normal(size=rows) > 0).astype(int)
    challenger, champion = signal + rng.normal(size=rows), signal + 1.1 * rng.normal(size=rows)
    results = {}
    for name, max_rows in (("full", None), (f"capped at {cap:,}", cap)):
        started = time.perf_counter()
        result = paired_bootstrap("roc_auc", y, challenger, champion, n_bootstrap=resamples, max_rows=max_rows)
        results[name] = result
        print(
            f"{rows:,} rows, {name}: {time.perf_counter() - started:.1f}s, gain {result.difference:+.5f}, "
            f"95 % CI [{result.low:+.5f}, {result.high:+.5f}], width {result.high - result.low:.5f}"
        )
    full, capped = results.values()
    print(f"{rows:,} rows: capped width / full width {(capped.high - capped.low) / (full.high - full.low):.3f}")


if __name__ == "__main__":
    main()
