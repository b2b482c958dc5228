"""Orchestration overhead of our runner against plain `optuna.Study.optimize`.

Both run the same trivial objective for N trials on a fresh SQLite file opened the same way
(heartbeats on), alternating A/B/A/B so that machine noise hits both alike. Prints the median time
per trial of each and their ratio (target: ours / plain <= 1.10).

    .venv/bin/python benchmarks/overhead.py [--trials 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from optuna_bigmodel import parse_spec, run_study
from optuna_bigmodel.study import open_storage


def objective(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -10, 10) - 2) ** 2 + trial.suggest_int("n", 0, 3)


def plain(folder: Path, n_trials: int) -> float:
    storage = open_storage(f"sqlite:///{folder / 'plain.db'}")
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return (time.perf_counter() - start) / n_trials


def ours(folder: Path, n_trials: int) -> float:
    spec = parse_spec(
        {
            "name": "overhead",
            "task": {"name": "unused-with-objective"},
            "knobs": {
                "x": {"axis": "strategy", "low": -10.0, "high": 10.0},
                "n": {"axis": "structure", "low": 0, "high": 3},
            },
            "sampler": "random",
            "storage": f"sqlite:///{folder / 'ours.db'}",
            "run_dir": str(folder / "runs"),
            "budget": {"n_trials": n_trials},
        }
    )
    start = time.perf_counter()
    run_study(spec, objective=objective, progress=False)
    return (time.perf_counter() - start) / n_trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    for round_ in range(args.rounds):
        for name, run in (("plain", plain), ("ours", ours)):
            with tempfile.TemporaryDirectory() as folder:
                times[name].append(run(Path(folder), args.trials))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:6s} median {value * 1e3:7.2f} ms/trial  (rounds: "
              + ", ".join(f"{v * 1e3:.2f}" for v in times[name]) + ")")
    print(f"ratio ours/plain = {medians['ours'] / medians['plain']:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
