"""Trials per second and failures for N local workers on each storage backend.

Each worker process runs our worker loop (`run_trials`) with a short objective (5 ms) until the
study holds the target number of trials. Throughput counts from the first worker's first trial to
the last worker's end, so process start-up is not in it. Failures are worker crashes, FAIL trials
and trials left RUNNING.

    .venv/bin/python benchmarks/storage_throughput.py [--trials 200] [--workers 1 2 4]

PostgreSQL runs on a throwaway local server (needs Debian's postgresql package).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from optuna_bigmodel.study import open_storage, run_trials
from optuna_bigmodel.testing import postgres_bin_dir, running_postgres


def objective(trial: optuna.Trial) -> float:
    time.sleep(0.005)
    return trial.suggest_float("x", 0, 1)


def worker(url: str, n_trials: int, times: multiprocessing.Queue) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="bench", storage=open_storage(url))
    start = time.time()
    run_trials(study, objective, exhaustive=False, n_trials=n_trials, timeout=None)
    times.put((start, time.time()))


def measure(url: str, workers: int, n_trials: int) -> tuple[float, int]:
    study = optuna.create_study(study_name="bench", storage=open_storage(url))
    context = multiprocessing.get_context("spawn")
    times = context.Queue()
    processes = [context.Process(target=worker, args=(url, n_trials, times)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    crashed = sum(process.exitcode != 0 for process in processes)
    spans = [times.get() for _ in range(workers - crashed)]
    trials = study.get_trials()
    bad = sum(t.state in (TrialState.FAIL, TrialState.RUNNING) for t in trials)
    done = sum(t.state == TrialState.COMPLETE for t in trials)
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return done / elapsed, crashed + bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print("| workers | storage | trials/s | failures |\n| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for workers in args.workers:
            for name in ("sqlite", "journal", "postgresql"):
                if name == "postgresql" and postgres_bin_dir() is None:
                    continue
                rate, failures = _run(name, Path(folder) / f"{name}-{workers}", workers, args.trials)
                print(f"| {workers} | {name} | {rate:.1f} | {failures} |", flush=True)


def _run(name: str, base: Path, workers: int, n_trials: int) -> tuple[float, int]:
    if name == "postgresql":
        with running_postgres() as url:
            return measure(url, workers, n_trials)
    url = f"sqlite:///{base}.db" if name == "sqlite" else f"journal:///{base}.log"
    return measure(url, workers, n_trials)


if __name__ == "__main__":
    main()
