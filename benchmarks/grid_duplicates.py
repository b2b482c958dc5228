"""Exhaustive grid over several worker processes: duplicated and missed grid points.

Plain Optuna: `GridSampler` in each worker, `Study.optimize` until the grid is exhausted. Ours: the
grid queued once (`queue_grid`), each worker claiming queued trials (`run_trials(exhaustive=True)`),
as `optuna-bigmodel run --workers N` does. Same 100-point grid, same objective, same SQLite storage.

    .venv/bin/python benchmarks/grid_duplicates.py [--runs 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna

from optuna_bigmodel.study import open_storage, queue_grid, run_trials

SPACE = {"a": list(range(10)), "b": list(range(10))}


def objective(trial: optuna.Trial) -> float:
    time.sleep(0.01)  # a short trial, so workers ask for points at nearly the same moments
    return trial.suggest_int("a", 0, 9) + trial.suggest_int("b", 0, 9)


def plain_worker(url: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="g", storage=url, sampler=optuna.samplers.GridSampler(SPACE))
    study.optimize(objective, n_trials=200)  # GridSampler stops the loop when the grid is done


def our_worker(url: str) -> None:
    study = optuna.load_study(study_name="g", storage=open_storage(url))
    run_trials(study, objective, exhaustive=True, n_trials=None, timeout=None)


def one_run(kind: str, folder: Path, workers: int) -> tuple[int, int]:
    url = f"sqlite:///{folder / f'{kind}.db'}"
    study = optuna.create_study(study_name="g", storage=open_storage(url))
    if kind == "ours":
        queue_grid(study, [{"a": a, "b": b} for a in SPACE["a"] for b in SPACE["b"]])
    target = plain_worker if kind == "plain" else our_worker
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(url,)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    counts = Counter((t.params["a"], t.params["b"]) for t in done)
    duplicates = sum(n - 1 for n in counts.values())
    missed = 100 - len(counts)
    return duplicates, missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for kind in ("plain", "ours"):
        results = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                results.append(one_run(kind, Path(folder), args.workers))
        dup = [d for d, _ in results]
        missed = [m for _, m in results]
        print(f"{kind:5s} workers={args.workers} duplicates per run {dup}  missed per run {missed}")


if __name__ == "__main__":
    main()
