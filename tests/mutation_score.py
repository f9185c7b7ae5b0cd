"""The mutation score of the last ``mutmut run`` (read from mutmut's own results), overall and per module.

    python tests/mutation_score.py [--min 85]

Score = (killed + timed out) / (mutants tested; a mutant no selected test reaches counts as tested and not
killed; mutants not checked yet are left out and listed). Exits 1 below ``--min``.
"""

from __future__ import annotations

import argparse
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
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in _results():
        per_module[name.split(".x_", 1)[0].split(".xǁ", 1)[0]][status] += 1
    overall: Counter[str] = Counter()
    for module, counts in sorted(per_module.items()):
        overall.update(counts)
        tested = sum(counts.values()) - counts["not checked"] - counts["skipped"]
        dead = counts["killed"] + counts["timeout"]
        share = f"{100 * dead / tested:5.1f}%" if tested else "  n/a"
        print(f"{module:50} killed {dead:4}/{tested:<4} ({share})  survived {counts['survived']:3}  {dict(counts)}")
    tested = sum(overall.values()) - overall["not checked"] - overall["skipped"]
    dead = overall["killed"] + overall["timeout"]
    score = 100.0 * dead / tested if tested else 0.0
    print(f"\nmutation score: {dead}/{tested} = {score:.1f}% (target >= {args.min:.0f}%); all: {dict(overall)}")
    return 0 if score >= args.min else 1


if __name__ == "__main__":
    raise SystemExit(main())
