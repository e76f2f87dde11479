"""Benchmark baseline: the bare FastAPI app, exactly examples/fastapi/app.py.

POST /submit echoes a small JSON body; nothing is logged. scripts/bench.sh runs
it untapped, under `httptape run`, and under `strace -f -s 65536`.

    /usr/bin/python3 -m uvicorn app_bare:app --app-dir bench --host 127.0.0.1 --port 8000
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "fastapi"))

from app import app  # noqa: E402,F401  (the demo app itself, unchanged)
