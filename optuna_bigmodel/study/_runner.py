"""Launching a study from its spec: validate everything, open the storage, run the trials."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.inner import INNER_KNOBS, study_knobs
from optuna_bigmodel.spec import StudySpec, apply_overrides, load_spec, parse_spec
from optuna_bigmodel.study._exhaustive import QueueOnlySampler, queue_grid
from optuna_bigmodel.study._loop import Objective, run_trials, sigterm_interrupts
from optuna_bigmodel.study._objective import LightningObjective, quiet_lightning
from optuna_bigmodel.study._progress import StudyProgress
from optuna_bigmodel.study._pruners import make_pruner
from optuna_bigmodel.study._samplers import grid_points, is_exhaustive, make_sampler
from optuna_bigmodel.study._seeds import derived_seed
from optuna_bigmodel.study._storage import default_storage_url, open_storage
from optuna_bigmodel.study._warm_start import warm_start
from optuna_bigmodel.study._workers import gpus_per_trial, launch_workers
from optuna_bigmodel.tasks import resolve_task

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

    from optuna_bigmodel.tasks import Task

SPEC_ATTR = "optuna_bigmodel.spec"
# What makes two runs the same study: changing any of these under a stored study is refused.
_IDENTITY_KEYS = ("direction", "metric", "task", "knobs")


@dataclass(frozen=True)
class WarmStart:
    """Where to take warm-start configurations from: an earlier study, maybe in another storage."""

    study: str
    storage: str | None = None
    top_k: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise BadInputError(f"warm_start_top: expected an integer >= 1, got {self.top_k!r}")


def run_study(
    spec: str | os.PathLike[str] | StudySpec,
    *,
    objective: Objective | None = None,
    sampler: BaseSampler | None = None,
    pruner: BasePruner | None = None,
    workers: int = 1,
    warm_start_from: WarmStart | None = None,
    allow_changed_space: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> optuna.Study:
    """Runs (or resumes) the study a spec describes and returns it.

    Args:
        spec: A study file path or a parsed `StudySpec`.
        objective: Replaces the Lightning training run of the spec's task (e.g. a cheap function
            in tests or benchmarks); the knobs, sampler, storage and budget are still the spec's.
        sampler: An Optuna sampler object used instead of the spec's sampler.
        pruner: An Optuna pruner object used instead of the spec's pruner.
        workers: Processes on this machine sharing the storage; where there are GPUs, each
            is pinned to its own ``trainer.devices`` of them.
        warm_start_from: Queue the best configurations of an earlier study first.
        allow_changed_space: Continue a stored study whose knobs, task or metric changed.
        progress: Print a line per finished trial.
        **overrides: Spec fields to override: storage, n_trials, timeout, sampler (a name),
            pruner (a name), seed, run_dir, max_steps.

    Example:
        .. code-block:: python

            study = optuna_bigmodel.run_study("studies/quickstart.yaml", n_trials=4)
            print(study.best_params)
    """
    spec = _as_spec(spec)
    spec = apply_overrides(spec, **overrides) if overrides else spec
    if workers < 1:
        raise BadInputError(f"workers: expected an integer >= 1, got {workers!r}")
    if workers > 1 and (objective or sampler or pruner):
        raise BadInputError(
            "workers: objects passed from Python (objective, sampler, pruner) live in this "
            f"process only; with workers={workers} name the sampler and pruner in the study file"
        )
    task = None if objective is not None else _checked_task(spec)
    knobs = spec.knobs if task is None else study_knobs(spec, task)
    sampler_obj = make_sampler(sampler or spec.sampler, knobs, spec.seed)
    pruner_obj = make_pruner(pruner or spec.pruner)
    exhaustive = is_exhaustive(sampler_obj)
    url = spec.storage or default_storage_url(spec.run_dir, spec.name)
    source = _warm_start_source(warm_start_from, exhaustive, url)
    study = _open_study(url, spec, sampler_obj, pruner_obj, allow_changed_space)
    if exhaustive:
        queue_grid(study, grid_points(knobs))
    if source is not None and warm_start_from is not None:
        warm_start(study, source, knobs, warm_start_from.top_k)
    if workers > 1:
        with sigterm_interrupts():
            launch_workers(url, spec.name, workers, gpus_per_worker=gpus_per_trial(spec.trainer))
        return study
    run_objective = objective or LightningObjective(spec, task, knobs)  # type: ignore[arg-type]
    _run(study, spec, run_objective, exhaustive, progress)
    return study


def run_worker(
    storage: str, study_name: str, *, worker_index: int | None = None, progress: bool = True
) -> optuna.Study:
    """Joins a running study as one more worker (on this or another machine) until its budget ends.

    The spec is read from the study itself, where `run_study` stored it, so a worker needs only the
    storage URL and the study name.
    """
    study = _load_existing(open_storage(storage), study_name)
    spec = _stored_spec(study)
    seed = None if worker_index is None else derived_seed(spec.seed, 1_000_000 + worker_index)
    task = _checked_task(spec)
    knobs = study_knobs(spec, task)
    sampler = make_sampler(spec.sampler, knobs, seed if seed is not None else spec.seed)
    study.sampler = sampler
    study.pruner = make_pruner(spec.pruner)
    objective = LightningObjective(spec, task, knobs)
    _run(study, spec, objective, is_exhaustive(sampler), progress)
    return study


def _run(
    study: optuna.Study, spec: StudySpec, objective: Objective, exhaustive: bool, progress: bool
) -> None:
    quiet_lightning()
    callbacks = [StudyProgress(study, spec.budget.n_trials)] if progress else []
    if exhaustive:
        study.sampler = QueueOnlySampler(study.sampler)
    with sigterm_interrupts():
        run_trials(
            study,
            objective,
            exhaustive=exhaustive,
            n_trials=spec.budget.n_trials,
            timeout=spec.budget.timeout,
            compute_steps=spec.budget.compute_steps,
            callbacks=callbacks,
        )


def _as_spec(spec: str | os.PathLike[str] | StudySpec) -> StudySpec:
    if isinstance(spec, StudySpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(spec)
    raise BadInputError(f"spec: expected a study file path or a StudySpec, got {type(spec).__name__}")


def _checked_task(spec: StudySpec) -> Task:
    task = resolve_task(spec.task.name)
    if task.params is None:
        return task
    for knob in spec.knobs:
        if knob.name not in task.params and knob.name not in INNER_KNOBS:
            raise BadInputError(
                f"{spec.source or '<dict>'}: knobs.{knob.name}: task {task.name!r} has no setting "
                f"{knob.name!r}; it accepts: {', '.join(sorted(task.params | INNER_KNOBS))}"
            )
    return task


def _warm_start_source(
    warm: WarmStart | None, exhaustive: bool, default_url: str
) -> optuna.Study | None:
    if warm is None:
        return None
    if exhaustive:
        raise BadInputError("warm_start: an exhaustive grid evaluates every point anyway")
    storage = open_storage(warm.storage or default_url, heartbeat=False, must_exist=True)
    return _load_existing(storage, warm.study)


def _open_study(
    url: str,
    spec: StudySpec,
    sampler: BaseSampler,
    pruner: BasePruner,
    allow_changed_space: bool,
) -> optuna.Study:
    storage = open_storage(url)
    exists = spec.name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if exists:
        _check_same_study(_load_existing(storage, spec.name), spec, allow_changed_space)
    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        direction=spec.direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    study.set_user_attr(SPEC_ATTR, spec.to_dict())
    if exists:
        print(f"[{spec.name}] resuming the study stored in {url}", file=sys.stderr)
    return study


def _check_same_study(study: optuna.Study, spec: StudySpec, allow_changed_space: bool) -> None:
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        raise BadInputError(
            f"storage: a study named {spec.name!r} exists but was not created by optuna_bigmodel; "
            "choose another name"
        )
    old = {k: stored.get(k) for k in _IDENTITY_KEYS}
    new = {k: spec.to_dict().get(k) for k in _IDENTITY_KEYS}
    if old != new and not allow_changed_space:
        changed = [k for k in _IDENTITY_KEYS if old[k] != new[k]]
        raise BadInputError(
            f"study {spec.name!r} already exists with a different {', '.join(changed)}.\n"
            f"  stored: {({k: old[k] for k in changed})}\n  new:    {({k: new[k] for k in changed})}\n"
            "Rename the study, or pass --allow-changed-space to continue it anyway."
        )


def _load_existing(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise BadInputError(
            f"study: no study named {name!r} in the storage; it holds: {', '.join(names) or 'none'}"
        ) from None


def _stored_spec(study: optuna.Study) -> StudySpec:
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        raise BadInputError(
            f"study {study.study_name!r} has no stored spec; start it with `optuna-bigmodel run`"
        )
    return parse_spec(stored, source=f"study {study.study_name!r}")
