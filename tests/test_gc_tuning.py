"""The API server process tunes the garbage collector once at start-up (``main_app``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from marketplace.core.observability import GC_THRESHOLDS

PROBE = """
import gc, json
before = gc.get_freeze_count()
from marketplace.app import main_app
app = main_app()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}))
"""


def test_main_app_freezes_the_start_up_heap_and_raises_the_gc_threshold() -> None:
    # A fresh interpreter: freezing the test process itself would keep every later test's garbage.
    env = {**os.environ, "MARKETPLACE_ENVIRONMENT": "test", "MARKETPLACE_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["before"] == 0
    assert probe["frozen"] > 50_000  # modules, app, ORM mappers ...
    assert tuple(probe["thresholds"]) == GC_THRESHOLDS
