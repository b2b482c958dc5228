"""Learned learning rate against an 11-point log grid, both run as real studies (run_study).

The end-to-end companion of ``learned_lr.py``: the same question through the product's own path,
study files and all. Task ``digits_mlp``, plain SGD, batch 64, a constant rate. Per seed:

- grid: a study with ``lr: {low: 1e-3, high: 1, log: true, grid_points: 11}`` and the ``grid``
  sampler: 11 Lightning runs; the study's best trial (by final ``val_loss``) is the grid's pick;
- learned: a study of one trial with ``lr: {mode: learn, low: 1e-3, high: 1}`` (starting at the
  geometric middle, 0.0316): one Lightning run with ``BilevelTuning``; 10% of the training split
  is carved out as its search split (so its weights see 90% of the training data).

Both studies have ``trainer.test_at_end``: the number compared is the test loss of the grid's pick
and of the learned run (the val loss is shown too; the grid's is picked on val itself, which
favours it). Gradient evaluations count every training step and every search batch (each trial's
``compute_steps``, or its steps).

    .venv/bin/python benchmarks/learned_lr_study.py [--seeds 5] [--steps 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from typing import Any

import torch

from optuna_bigmodel import run_study
from optuna_bigmodel.spec import parse_spec


def spec(seed: int, steps: int, lr: dict[str, Any], sampler: str, folder: str) -> dict[str, Any]:
    return {
        "name": f"lr-{sampler}-{seed}",
        "seed": seed,
        "task": {"name": "digits_mlp", "model": {"optimizer": "sgd"}},
        "knobs": {"lr": {"axis": "strategy", **lr}},
        "sampler": {"name": sampler},
        "storage": f"sqlite:///{folder}/lr-{sampler}-{seed}.db",
        "run_dir": folder,
        "trainer": {"max_steps": steps, "val_check_interval": steps, "accelerator": "cpu",
                    "progress_bar": False, "test_at_end": True},
        "budget": {"n_trials": 1} if sampler == "random" else {},
    }  # fmt: skip


def run(seed: int, steps: int, folder: str) -> dict[str, float]:
    grid_lr = {"low": 1e-3, "high": 1.0, "log": True, "grid_points": 11}
    grid = run_study(parse_spec(spec(seed, steps, grid_lr, "grid", folder)), progress=False)
    learned_lr = {"mode": "learn", "low": 1e-3, "high": 1.0}
    learned = run_study(parse_spec(spec(seed, steps, learned_lr, "random", folder)), progress=False)
    (trial,) = learned.trials
    return {
        "grid_lr": grid.best_params["lr"],
        "grid_val": grid.best_value,
        "grid": grid.best_trial.user_attrs["test"]["test_loss"],
        "learned_lr": trial.user_attrs["learned"]["lr"]["final"],
        "learned_val": trial.value,
        "learned": trial.user_attrs["test"]["test_loss"],
        "grid_cost": steps * len(grid.trials),
        "learned_cost": trial.user_attrs["compute_steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"digits_mlp, sgd, {args.steps} steps, {args.seeds} seeds, via run_study")
    print("| seed | grid pick lr | its val | its test | learned lr | learned val | learned test "
          "| test ratio | cost ratio |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            r = run(seed, args.steps, folder)
            rows.append(r)
            print(f"| {seed} | {r['grid_lr']:.4f} | {r['grid_val']:.4f} | {r['grid']:.4f} | "
                  f"{r['learned_lr']:.4f} | {r['learned_val']:.4f} | {r['learned']:.4f} | "
                  f"{r['learned'] / r['grid']:.3f} | {r['learned_cost'] / r['grid_cost']:.3f} |",
                  flush=True)  # fmt: skip
    grid = statistics.mean(r["grid"] for r in rows)
    learned = statistics.mean(r["learned"] for r in rows)
    cost = sum(r["learned_cost"] for r in rows) / sum(r["grid_cost"] for r in rows)
    print(f"mean test loss: grid pick {grid:.4f}, learned {learned:.4f} ({learned / grid:.3f}x); "
          f"gradient evaluations learned / grid = {cost:.3f}")


if __name__ == "__main__":
    main()
