"""Training steps that pruning saves on a built-in study, and what it costs in the best value.

Each seed runs the same study file twice: with the pruner it names and with ``pruner: none``. The
sampler, its seed, the trials' seeds and the trial budget are the same; only the pruner differs
(so the sampler's later choices differ too, since it learns from pruned trials). A complete trial
trained ``max_steps`` steps, a pruned one stopped at the step stored in ``pruned_at_step``. Prints
a markdown table per seed and the totals (targets: >= 40% of steps saved, best value within 1%).
``--pruner`` replaces the study file's pruner, e.g. ``'{"name": "median", "kwargs": {...}}'``.

    .venv/bin/python benchmarks/pruning.py [--study studies/quickstart.yaml] [--seeds 0 1 2]
                                           [--pruner JSON]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.trial import TrialState

from optuna_bigmodel import StudySpec, load_spec, parse_spec, run_study


@dataclass(frozen=True)
class Run:
    steps: int  # training steps over all trials
    best: float
    n_pruned: int
    n_failed: int
    seconds: float


def run(spec: StudySpec, seed: int, pruner: str | None, folder: Path) -> Run:
    overrides = {"seed": seed, "storage": f"sqlite:///{folder / 'study.db'}"}
    if pruner is not None:
        overrides["pruner"] = pruner
    start = time.perf_counter()
    study = run_study(spec, progress=False, run_dir=str(folder), **overrides)
    seconds = time.perf_counter() - start
    max_steps = spec.trainer.max_steps
    trials = study.get_trials(deepcopy=False)
    steps = sum(_steps(t, max_steps) for t in trials)
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    failed = sum(t.state == TrialState.FAIL for t in trials)
    return Run(steps, study.best_value, pruned, failed, seconds)


def _steps(trial: optuna.trial.FrozenTrial, max_steps: int) -> int:
    if trial.state == TrialState.PRUNED:
        return int(trial.user_attrs["pruned_at_step"])
    if trial.state == TrialState.COMPLETE:
        return max_steps
    return max(trial.intermediate_values, default=0)  # a failed trial: at least this far


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/quickstart.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pruner", type=json.loads, help="a pruner in study-file form, as JSON")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(args.study)
    if args.pruner is not None:
        spec = parse_spec({**spec.to_dict(), "pruner": args.pruner}, source=args.study)
    spec = replace(spec, trainer=replace(spec.trainer, progress_bar=False))
    print(f"{args.study}: {spec.budget.n_trials} trials of {spec.trainer.max_steps} steps, "
          f"sampler {spec.sampler.name}, pruner {spec.pruner.name} {spec.pruner.kwargs}\n")
    print("| seed | steps without | steps with | saved | best without | best with | "
          "best with / without | pruned | time without / with |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    totals = [0, 0]
    ratios = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            without = run(spec, seed, "none", Path(a))
            with_ = run(spec, seed, None, Path(b))
        totals[0] += without.steps
        totals[1] += with_.steps
        ratios.append(with_.best / without.best)
        print(f"| {seed} | {without.steps} | {with_.steps} | {1 - with_.steps / without.steps:.1%} "
              f"| {without.best:.4f} | {with_.best:.4f} | {ratios[-1]:.4f} "
              f"| {with_.n_pruned} of {spec.budget.n_trials} "
              f"| {without.seconds:.0f} s / {with_.seconds:.0f} s |", flush=True)
    print(f"\nsteps saved over all seeds: {1 - totals[1] / totals[0]:.1%} (target >= 40%)")
    sign = 1 if spec.direction == "minimize" else -1  # a ratio above 1 is worse when minimising
    met = all(sign * (r - 1) <= 0.01 for r in ratios)
    print("best with / without: " + ", ".join(f"{r:.4f}" for r in ratios)
          + f" (target: no more than 1% worse: {met})")


if __name__ == "__main__":
    main()
