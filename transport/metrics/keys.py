"""The typed app key of the metrics (beside what it keys, like transport/http/keys.py)."""
from __future__ import annotations

from aiohttp import web

from transport.metrics.app_metrics import Metrics

METRICS = web.AppKey("metrics", Metrics)
