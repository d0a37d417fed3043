"""A/B wrapper for bench/lookup.py: a reference backend with spyne's forced gc.collect() switched off.

spyne's MethodContext.close() runs a full gc.collect() at most once per second (spyne.const.MIN_GC_INTERVAL = 1.0).
In a backend worker (about 100k tracked objects) that costs about 40 ms of CPU and, under load on a busy machine,
freezes every thread of the worker (GIL held) for 150-250 ms each second. Compare:

    .venv/bin/python bench/lookup.py
    .venv/bin/python bench/lookup.py --pythonpath bench/wrappers --backend-app "backend_no_spyne_gc:create_app()"
"""

import spyne.const

spyne.const.MIN_GC_INTERVAL = float("inf")

from services.backends.wsgi import create_app  # noqa: E402

__all__ = ["create_app"]
