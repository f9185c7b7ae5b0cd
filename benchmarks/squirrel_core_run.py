"""Run one benchmark script's measurement in squirrel-core's own venv and read back its JSON (same run)."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def measure_in_squirrel_core(python: str, script: str, *args: str) -> Any:
    """``python script --impl squirrel_core --raw-json *args``: the last line it prints, parsed as JSON."""
    cmd = [python, script, "--impl", "squirrel_core", "--raw-json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])
