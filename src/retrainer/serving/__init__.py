"""Serving registered models over HTTP with an A/B split, and the online comparison of the two arms."""

from __future__ import annotations

from retrainer.serving.router import bucket, challenger_buckets, route

__all__ = ["bucket", "challenger_buckets", "route"]
