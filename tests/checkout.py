"""The checkout under test, for tests that start another Python process."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root: the folder holding ``fastgrad/`` and ``tests/``."""


def in_checkout():
    """Keyword arguments of ``subprocess.run`` that make the child import this checkout."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {"cwd": ROOT, "env": {**os.environ, "PYTHONPATH": path}}
