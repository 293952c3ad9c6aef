"""The benchmark's apps for granian (``--interface wsgi --factory``): the same Flask apps.

granian imports this in each worker process, so the embedded engine is built
after the worker starts, as under gunicorn. The settings file comes from the
benchmark (``CARBONGATE_BENCH_CONFIG``): this module is the benchmark's, not
carbongate's way of reading configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _settings() -> Any:
    from carbongate import settings as settings_mod

    settings = settings_mod.load(config_file=Path(os.environ["CARBONGATE_BENCH_CONFIG"]))
    settings.webhook.metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.webhook.metrics_dir.resolve()))
    return settings


def floor() -> Any:
    from bench.floor import create

    return create()


def carbongate() -> Any:
    settings = _settings()
    from webhook import app

    return app.create_app(settings, multiprocess_dir=settings.webhook.metrics_dir)
