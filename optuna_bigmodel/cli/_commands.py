"""What each command does, given its parsed arguments."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.cli._probe import probe  # noqa: F401 - `main` finds each command here
from optuna_bigmodel.spec import StudySpec, load_spec
from optuna_bigmodel.study import WarmStart, default_storage_url, open_storage, run_study
from optuna_bigmodel.study import run_worker as join_study
from optuna_bigmodel.visualization import write_report

_RUN_OVERRIDES = ("storage", "n_trials", "timeout", "sampler", "pruner", "seed", "run_dir", "max_steps")


def run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in _RUN_OVERRIDES if getattr(args, k) is not None}
    warm = None
    if args.warm_start_study:
        warm = WarmStart(args.warm_start_study, args.warm_start_storage, args.warm_start_top)
    study = run_study(
        args.spec,
        workers=args.workers,
        warm_start_from=warm,
        allow_changed_space=args.allow_changed_space,
        progress=not args.quiet,
        **overrides,
    )
    _print_best(study)
    if not args.no_plot:
        spec = load_spec(args.spec)
        out = os.path.join(overrides.get("run_dir", spec.run_dir), spec.name, "report")
        _print_report(write_report(study, out))
    return 0


def worker(args: argparse.Namespace) -> int:
    join_study(args.storage, args.study, worker_index=args.worker_index, progress=not args.quiet)
    return 0


def studies(args: argparse.Namespace) -> int:
    storage = open_storage(_storage_url(args, None), heartbeat=False, must_exist=True)
    for summary in optuna.get_all_study_summaries(storage):
        best = summary.best_trial.value if summary.best_trial else None
        print(f"{summary.study_name}\t{summary.n_trials} trials\tbest {best}")
    return 0


def best(args: argparse.Namespace) -> int:
    _print_best(_load_study(args), verbose=True)
    return 0


def report(args: argparse.Namespace) -> int:
    study = _load_study(args)
    out = args.out or os.path.join(_spec(args).run_dir if args.spec else ".", study.study_name, "report")
    page, *figures = write_report(study, out)
    print(f"wrote {page}: the summary and {len(figures)} figures on one page")
    if figures:
        names = ", ".join(os.path.basename(path) for path in figures)
        print(f"each figure also as its own file in {out}: {names}")
    return 0


def _print_best(study: optuna.Study, verbose: bool = False) -> None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        print(f"study {study.study_name!r}: no complete trial yet")
        return
    trial = study.best_trial
    print(f"best trial: #{trial.number}  value {trial.value:.6g}{_gap(trial)}")
    print(f"  knobs: {json.dumps(trial.params, default=str)}")
    if verbose:
        attrs = {k: v for k, v in trial.user_attrs.items()}
        print(f"  recorded: {json.dumps(attrs, default=str, sort_keys=True)}")


def _gap(trial: optuna.trial.FrozenTrial) -> str:
    optimum = trial.user_attrs.get("optimum")
    if optimum is None or trial.value is None:
        return ""
    return f"  (best achievable {optimum:.6g}, {trial.value - optimum:+.4g} from it)"


def _print_report(paths: list[str]) -> None:
    for path in paths:
        print(f"wrote {path}")


def _load_study(args: argparse.Namespace) -> optuna.Study:
    name = args.study or (_spec(args).name if args.spec else None)
    if name is None:
        raise BadInputError("study: give a study file or --study NAME")
    storage = open_storage(_storage_url(args, name), heartbeat=False, must_exist=True)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise BadInputError(f"study: no study named {name!r} in {_storage_url(args, name)!r}") from None


def _storage_url(args: argparse.Namespace, name: str | None) -> str:
    if args.storage:
        return args.storage
    if not args.spec:
        raise BadInputError("storage: give a study file or --storage URL")
    spec = _spec(args)
    return spec.storage or default_storage_url(spec.run_dir, spec.name, create=False)


def _spec(args: argparse.Namespace) -> StudySpec:
    cached: Any = getattr(args, "_spec_cache", None)
    if cached is None:
        cached = load_spec(args.spec)
        args._spec_cache = cached
    return cached
