"""Tuning quality per unit of compute: exhaustive grid, random search, TPE + Hyperband and ours on
every built-in task, over several seeds.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.quality [--quick] [--seeds 5] [--jobs 2]
        [--tasks markov_gpt digits_mlp] [--out runs/quality] [--first-seed 0]
        [--only ours --reuse runs/quality/results.json] [--lr-starts 1e-2 3e-2 1e-1]

Writes ``results.json`` (every trial of every study: cost, val, test), ``quality.html`` (the
curves) and prints the tables that benchmarks/RESULTS.md records. Every study is a real one
(run_study, SQLite, Lightning) and deterministic given its seed, so ``--jobs`` changes only the
wall time. What is searched: see ``benchmarks/quality/_setup.py``.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
import json
import multiprocessing
from dataclasses import replace
from pathlib import Path
import time

from benchmarks.quality._figures import write_figures
from benchmarks.quality._run import MethodRun
from benchmarks.quality._run import run_task_seed
from benchmarks.quality._setup import FULL
from benchmarks.quality._setup import METHODS
from benchmarks.quality._setup import QUICK
from benchmarks.quality._setup import TASKS
from benchmarks.quality._summary import markdown
from benchmarks.quality._summary import seed_rows
from benchmarks.quality._summary import verdicts


def main(argv: list[str] | None = None) -> list[MethodRun]:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.lr_starts:
        sizes = replace(sizes, lr_starts=tuple(args.lr_starts))
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    out = Path(args.out)
    (out / "studies").mkdir(parents=True, exist_ok=True)
    methods = tuple(args.only) if args.only else METHODS
    units = [(TASKS[task], sizes, seed, str(out / "studies"), methods)
             for seed in range(args.first_seed, args.first_seed + seeds) for task in args.tasks]  # fmt: skip
    start = time.perf_counter()
    runs = _run_all(units, args.jobs)
    wall = time.perf_counter() - start
    if args.reuse:  # the other methods' runs from an earlier results.json (same sizes and seeds)
        earlier = [MethodRun.from_dict(r) for r in json.loads(Path(args.reuse).read_text())]
        runs = [r for r in earlier if r.method not in methods] + runs
    (out / "results.json").write_text(json.dumps([r.to_dict() for r in runs], indent=1))
    missing = _missing_methods(runs)
    if missing:  # e.g. --only ours without --reuse: the curves and tables compare all four
        print(f"results.json written; no tables or figures: {missing} missing (use --reuse)")
        return runs
    page = write_figures(runs, out)
    rows = seed_rows(runs)
    print(markdown(rows, verdicts(rows)))
    mode = "quick" if args.quick else "full"
    print(f"\n{mode} mode, {seeds} seeds, {len(units)} task-seeds, {args.jobs} jobs: "
          f"{wall / 60:.1f} min wall; figures: {page}")  # fmt: skip
    return runs


def _missing_methods(runs: list[MethodRun]) -> list[str]:
    """``task/seed/method`` for each method a run task-seed lacks."""
    have = {(r.task, r.seed, r.method) for r in runs}
    return [f"{task}/{seed}/{method}" for task, seed in sorted({(r.task, r.seed) for r in runs})
            for method in METHODS if (task, seed, method) not in have]  # fmt: skip


def _run_all(units: list[tuple], jobs: int) -> list[MethodRun]:
    if jobs == 1:
        return [run for unit in units for run in run_task_seed(*unit)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_task_seed, *unit) for unit in units]
        return [run for future in futures for run in future.result()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smaller space, shorter runs")
    parser.add_argument("--seeds", type=int, default=None, help="default 5, quick 2")
    parser.add_argument("--jobs", type=int, default=2, help="task-seeds run at once (processes)")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+seeds-1")
    parser.add_argument("--only", nargs="+", choices=METHODS, help="run only these methods")
    parser.add_argument("--reuse", help="an earlier results.json: the methods not run come from it")
    parser.add_argument("--lr-starts", type=float, nargs="+", help="ours' lr_init grid")
    return parser


if __name__ == "__main__":
    main()
