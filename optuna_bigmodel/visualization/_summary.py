"""The report's opening words: the best trial, its configuration, what it learned, which knobs
mattered and what the study cost, computed as data and then said in plain language."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel.visualization import _trials
from optuna_bigmodel.visualization._compute import compute_data
from optuna_bigmodel.visualization._gates import gate_records
from optuna_bigmodel.visualization._optuna_views import importance_note, knob_importances

MAX_PARETO_LISTED = 5


@dataclass(frozen=True)
class BestTrial:
    """A best trial and what it recorded."""

    number: int
    values: list[float]
    params: dict[str, Any]
    learned: dict[str, float]  # final value of each knob learned inside the trial
    kept_gates: list[str] | None  # None: the trial recorded no structure
    cut_gates: list[str] | None
    params_before: int | None
    params_after: int | None


@dataclass(frozen=True)
class StudySummary:
    """Everything the summary says, as data."""

    study_name: str
    metrics: list[str]
    directions: list[str]
    counts: dict[str, int]  # trials by state: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    best: list[BestTrial]  # the best trial; with several objectives, the Pareto front (a few)
    n_best: int  # how many best trials there are (the whole Pareto front)
    optimum: float | None
    fixed_knobs: dict[str, Any]  # knobs the spec fixed to one value, the same in every trial
    importances: dict[str, float]  # of the first objective, most important first
    importance_note: str | None  # why there are no importances yet
    total_steps: int
    saved_by_pruning: int | None
    max_steps: int | None
    fail_reasons: dict[str, int]


def summary_data(study: optuna.Study) -> StudySummary:
    """Computes what the report's summary says about a study."""
    n = len(study.directions)
    best = _best_trials(study)
    importances = knob_importances(study)
    note = importance_note(study)
    if note is None and not importances:
        note = "fANOVA found no variance to explain"
    compute = compute_data(study, objective=0)
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return StudySummary(
        study_name=study.study_name,
        metrics=[_trials.objective_name(study, i) for i in range(n)],
        directions=["minimize" if _trials.is_minimize(study, i) else "maximize" for i in range(n)],
        counts=dict(Counter(t.state.name for t in study.get_trials(deepcopy=False))),
        best=[_best(t) for t in best[:MAX_PARETO_LISTED]],
        n_best=len(best),
        optimum=_trials.optimum(study),
        fixed_knobs=_trials.fixed_knobs(study),
        importances=importances,
        importance_note=note,
        total_steps=compute.total_steps,
        saved_by_pruning=compute.saved_by_pruning,
        max_steps=compute.max_steps,
        fail_reasons=dict(Counter(str(t.user_attrs.get("fail_reason", "unknown")) for t in failed)),
    )


def summary_lines(summary: StudySummary) -> list[str]:
    """The summary in plain language, one sentence (or two) per line."""
    lines = [_counts_line(summary)]
    if not summary.best:
        return lines + [_compute_line(summary)]
    if len(summary.directions) == 1:
        lines += _best_lines(summary, summary.best[0])
    else:
        lines.append(_pareto_line(summary))
    return lines + [_importance_line(summary), _compute_line(summary)]


def _best_trials(study: optuna.Study) -> list[FrozenTrial]:
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number)
    best = _trials.best_complete(study)
    return [] if best is None else [best]


def _best(trial: FrozenTrial) -> BestTrial:
    learned = trial.user_attrs.get("learned")
    finals = {
        str(name): float(record["final"])
        for name, record in (learned if isinstance(learned, dict) else {}).items()
        if isinstance(record, dict) and _trials.number_or_none(record.get("final")) is not None
    }
    structure = trial.user_attrs.get("structure")
    gates = gate_records(structure) or None
    return BestTrial(
        number=trial.number,
        values=[float(v) for v in trial.values or []],
        params=dict(trial.params),
        learned=finals,
        kept_gates=None if gates is None else [g for g, r in gates.items() if _kept(r)],
        cut_gates=None if gates is None else [g for g, r in gates.items() if not _kept(r)],
        params_before=_count(structure, "params_before"),
        params_after=_count(structure, "params_after"),
    )


def _kept(record: Any) -> bool:
    return isinstance(record, dict) and record.get("kept") is True


def _count(structure: Any, key: str) -> int | None:
    value = _trials.number_or_none(structure.get(key)) if isinstance(structure, dict) else None
    return None if value is None else int(value)


def _counts_line(s: StudySummary) -> str:
    total = sum(s.counts.values())
    parts = [f"{s.counts[k]} {w}" for k, w in _STATE_WORDS if s.counts.get(k)]
    line = f"Study {s.study_name!r}: {_plural(total, 'trial')}" + (
        f" ({', '.join(parts)})." if parts else "."
    )
    finished = sum(s.counts.get(k, 0) for k in ("COMPLETE", "PRUNED", "FAIL"))
    if s.counts.get("FAIL") and s.counts.get("FAIL") == finished:
        line += f" {'All' if finished > 1 else 'The'} {_plural(finished, 'finished trial')} failed,"
        line += " so there is no result yet."
    elif not s.best:
        line += " No trial has completed yet, so there is no best trial."
    if s.fail_reasons:
        reasons = ", ".join(f"{r} ({n})" for r, n in sorted(s.fail_reasons.items()))
        line += f" Why trials failed: {reasons}."
    if s.counts.get("RUNNING"):
        line += (
            f" The study is still running ({_plural(s.counts['RUNNING'], 'trial')} in progress)."
        )
    return line


def _best_lines(s: StudySummary, best: BestTrial) -> list[str]:
    line = f"Best trial: #{best.number}, {s.metrics[0]} = {best.values[0]:.6g}"
    if s.optimum is not None:
        gap = abs(best.values[0] - s.optimum)
        line += f", {gap:.4g} from the best achievable value ({s.optimum:.6g})"
    config = f"Its configuration: {_params_text(best.params)}"
    if s.fixed_knobs:
        config += f" (fixed in every trial: {_params_text(s.fixed_knobs)})"
    return [line + ".", config + ".", _learned_line(best)]


def _learned_line(best: BestTrial) -> str:
    said = []
    if best.learned:
        finals = ", ".join(f"{k} = {v:.4g}" for k, v in best.learned.items())
        said.append(f"it learned {finals} (final values)")
    if best.kept_gates is not None and best.cut_gates is not None:
        n = len(best.kept_gates) + len(best.cut_gates)
        text = f"it kept {len(best.kept_gates)} of {n} gates"
        said.append(text + (f" (cut: {', '.join(best.cut_gates)})" if best.cut_gates else ""))
    if best.params_before is not None and best.params_after is not None:
        said.append(f"its weights went from {best.params_before:,} to {best.params_after:,}")
    if not said:
        return "Inside training it learned nothing: every knob was sampled by the study or fixed."
    return "Inside training " + "; ".join(said) + "."


def _pareto_line(s: StudySummary) -> str:
    listed = "; ".join(
        f"#{b.number} ({', '.join(f'{m} {v:.4g}' for m, v in zip(s.metrics, b.values))})"
        for b in s.best
    )
    more = f" and {s.n_best - len(s.best)} more" if s.n_best > len(s.best) else ""
    front = _plural(s.n_best, "trial")
    return f"Pareto front: {front}, none better on every objective: {listed}{more}."


def _importance_line(s: StudySummary) -> str:
    which = f" for {s.metrics[0]}" if len(s.metrics) > 1 else ""
    if s.importance_note:
        return f"Which knobs mattered most{which}: not known yet ({s.importance_note})."
    top = list(s.importances.items())[:3]
    return f"Knobs that mattered most{which}: " + ", ".join(f"{k} ({v:.0%})" for k, v in top) + "."


def _compute_line(s: StudySummary) -> str:
    line = f"Compute: {s.total_steps:,} training steps in all"
    if s.max_steps is not None:
        line += f" (a full trial is {s.max_steps:,} steps)"
    if s.saved_by_pruning:
        share = s.saved_by_pruning / (s.total_steps + s.saved_by_pruning)
        line += f"; pruning saved {s.saved_by_pruning:,} steps ({share:.0%})"
    return line + "."


def _params_text(params: dict[str, Any]) -> str:
    if not params:
        return "no sampled knob"
    return ", ".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items()
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


_STATE_WORDS = [
    ("COMPLETE", "complete"), ("PRUNED", "pruned"), ("FAIL", "failed"),
    ("RUNNING", "running"), ("WAITING", "waiting"),
]  # fmt: skip
