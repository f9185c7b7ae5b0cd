"""The mutation score of the last ``mutmut run`` (read from mutmut's own results), overall and per module.

    python tests/mutation_score.py [--min 85]

Score = (killed + timed out) / (mutants tested), as mutmut counts it. Exits 1 below ``--min``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _results() -> list[tuple[str, str]]:
    """(mutant name, status) of every mutant mutmut tested."""
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True)
    rows = []
    for line in out.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and status:
            rows.append((name, status.strip()))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min", type=float, default=85.0)
    args = parser.parse_args()
    stats = json.loads((ROOT / "mutants" / "mutmut-cicd-stats.json").read_text())
    tested = int(stats["total"]) - int(stats.get("skipped", 0))
    killed = int(stats["killed"]) + int(stats.get("timeout", 0))
    score = 100.0 * killed / tested if tested else 0.0
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in _results():
        per_module[name.split(".x_", 1)[0].split(".xǁ", 1)[0]][status] += 1
    for module, counts in sorted(per_module.items()):
        total = sum(counts.values())
        dead = counts["killed"] + counts["timeout"]
        print(f"{module:55} {dead:4}/{total:<4} killed ({100 * dead / total:5.1f}%)  survived {counts['survived']}")
    print(f"\nmutation score: {killed}/{tested} = {score:.1f}% (target >= {args.min:.0f}%); {json.dumps(stats)}")
    return 0 if score >= args.min else 1


if __name__ == "__main__":
    raise SystemExit(main())
