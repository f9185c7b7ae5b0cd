"""Is a refactoring free? Paired, interleaved runs of the benchmarks at two revisions of squirrel_graph.

    python benchmarks/compare_revisions.py --base 517fbd1 [--rounds 7] [--scripts run storage ...]

The base revision is checked out into a temporary git worktree; each round runs every script once with the base's
library and once with the working tree's (in alternating order), in fresh processes with that library first on
``PYTHONPATH``, each writing its usual JSON report. Both sides run the *same* benchmark scripts, the base
revision's, so only the library differs. Every timing or rate in the reports is paired per round
(new / base) and the median of those paired ratios is reported: for times < 1 is faster, for rates > 1 is faster.
Figures a script already normalises by a baseline measured in its own process (kind "ratio", e.g. the pipeline's
time over a hand loop's) are the robust ones: machine-wide drift cancels inside each run.
Results go to stdout and to ``benchmarks/results/compare_revisions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPTS = ("run", "storage", "torch_loader", "monitor", "dask_maps", "numba_maps")
# keys whose numbers are timings (lower is better) or rates (higher is better); everything else is ignored
TIME_KEYS = ("best_s", "median_s", "seconds")
RATE_KEYS = ("items_per_s", "samples_per_s", "items/s", "rate")


def _leaves(data: object, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.update(_leaves(v, f"{prefix}[{i}]"))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix] = float(data)
    return out


def _kind(key: str) -> str | None:
    last = key.rsplit(".", 1)[-1]
    if "first_run" in last or "theoretical" in last:
        return None  # one-off compile times and constants: not paired figures
    if "ratio" in last or "_vs_" in last or last.endswith("_speedup"):
        return "ratio"  # a figure normalised by its own in-process baseline: what the README publishes
    if any(last.endswith(k) for k in TIME_KEYS):
        return "time"
    if any(k in last for k in RATE_KEYS):
        return "rate"
    return None


def run_script(library: Path, scripts: Path, script: str, repeats: int, out: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(library)}
    cmd = [sys.executable, str(scripts / f"{script}.py"), "--repeats", str(repeats), "--out", str(out)]
    subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), check=True, capture_output=True, text=True)
    return _leaves(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=1, help="repeats inside each script run")
    parser.add_argument("--scripts", nargs="+", default=list(SCRIPTS), choices=SCRIPTS)
    parser.add_argument("--out", default=str(HERE / "results" / "compare_revisions.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), args.base], check=True)
        try:
            ratios: dict[str, dict[str, list[float]]] = {s: {} for s in args.scripts}
            for r in range(args.rounds):
                for script in args.scripts:
                    order = [("base", base), ("new", ROOT)] if r % 2 == 0 else [("new", ROOT), ("base", base)]
                    got = {
                        name: run_script(tree, base / "benchmarks", script, args.repeats, Path(tmp) / f"{name}.json")
                        for name, tree in order
                    }
                    for key, old in got["base"].items():
                        if _kind(key) and key in got["new"] and old > 0:
                            ratios[script].setdefault(key, []).append(got["new"][key] / old)
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)

    report: dict[str, object] = {"base": args.base, "rounds": args.rounds, "scripts": {}}
    print(f"| script | figure | kind | median new/base over {args.rounds} paired rounds | min | max |")
    print("|---|---|---|---|---|---|")
    for script, figures in ratios.items():
        rows = {}
        for key, values in figures.items():
            med = statistics.median(values)
            rows[key] = {"kind": _kind(key), "median_ratio": med, "min": min(values), "max": max(values)}
            print(f"| {script} | {key} | {_kind(key)} | {med:.3f} | {min(values):.3f} | {max(values):.3f} |")
        report["scripts"][script] = rows  # type: ignore[index]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
