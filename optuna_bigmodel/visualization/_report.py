"""A study's report: one self-contained HTML page (summary and every figure), and each figure as a
file of its own."""

from __future__ import annotations

import os

import optuna
from optuna.trial import TrialState

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.visualization import _trials
from optuna_bigmodel.visualization._compute import compute_data, plot_compute
from optuna_bigmodel.visualization._curves import curves_data, plot_intermediate_values
from optuna_bigmodel.visualization._gates import (
    gate_history_data,
    plot_gate_history,
    plot_structure,
)
from optuna_bigmodel.visualization._history import history_data, plot_history
from optuna_bigmodel.visualization._learned import learned_data, plot_learned
from optuna_bigmodel.visualization._optimum import optimum_gap_data, plot_optimum_gap
from optuna_bigmodel.visualization._optuna_views import optuna_views
from optuna_bigmodel.visualization._page import View, render_page
from optuna_bigmodel.visualization._summary import summary_data, summary_lines

REPORT_FILE = "report.html"


def write_report(study: optuna.Study, out_dir: str) -> list[str]:
    """Writes the study's report into `out_dir` (created if needed) and returns the files written.

    The first file is ``report.html``: the summary and every figure on one page that opens without a
    network. Each figure is also written as ``<name>.html`` (``history.html``,
    ``intermediate_values.html``, ...); those share one ``plotly.min.js`` written beside them.
    Works on a study that is still running, on one whose trials all failed, and on a
    multi-objective study.

    Example:
        .. code-block:: python

            paths = write_report(optuna.load_study(study_name="quickstart", storage=url), "report/")
            print(paths[0])  # report/report.html
    """
    _make_folder(out_dir)
    views = report_views(study)
    page = os.path.join(out_dir, REPORT_FILE)
    title = f"Study {study.study_name}: what tuning found"
    with open(page, "w", encoding="utf-8") as file:
        file.write(render_page(title, summary_lines(summary_data(study)), views))
    return [page] + [_write_figure(view, out_dir) for view in views if view.figure is not None]


def report_views(study: optuna.Study) -> list[View]:
    """Every figure of the report, in page order, each with a note where it has nothing to draw."""
    n = len(study.directions)
    views = [_history(study, i, n) for i in range(n)]
    views += [_curves(study)]
    views += [_optimum_gap(study)] if n == 1 else []
    views += [_compute(study, i, n) for i in range(n)]
    views += [_learned(study), _gate_history(study), _structure(study)]
    return views + optuna_views(study)


def _history(study: optuna.Study, index: int, n: int) -> View:
    name, title = _per_objective(study, "history", "Optimisation history", index, n)
    data = history_data(study, index if n > 1 else None)
    if not data.numbers:
        return View(name, title, None, _nothing_finished(study))
    return View(name, title, plot_history(study, index if n > 1 else None))


def _curves(study: optuna.Study) -> View:
    title = "Learning curves (intermediate values; pruned trials cut short)"
    if not curves_data(study).curves:
        note = "no trial reported intermediate values (the pruning callback reports them)"
        return View("intermediate_values", title, None, note)
    return View("intermediate_values", title, plot_intermediate_values(study))


def _optimum_gap(study: optuna.Study) -> View:
    title = "Distance to the best achievable value"
    data = optimum_gap_data(study)
    if data.optimum is None:
        return View("optimum_gap", title, None, "the task does not know its best achievable value")
    if not data.numbers:
        return View("optimum_gap", title, None, "no complete trial yet")
    return View("optimum_gap", title, plot_optimum_gap(study))


def _compute(study: optuna.Study, index: int, n: int) -> View:
    name, title = _per_objective(study, "compute", "Compute spent and what pruning saved", index, n)
    data = compute_data(study, index)
    if not any(state in ("COMPLETE", "PRUNED") for state in data.states):
        note = _nothing_finished(study) + f"; {data.total_steps:,} training steps spent so far"
        return View(name, title, None, note)
    return View(name, title, plot_compute(study, index if n > 1 else None))


def _learned(study: optuna.Study) -> View:
    title = "Learned learning rate and schedule over training"
    if not learned_data(study).knobs:
        note = "no trial recorded learned knobs: every knob was sampled by the study or fixed"
        return View("learned", title, None, note)
    return View("learned", title, plot_learned(study))


def _gate_history(study: optuna.Study) -> View:
    title = "Gate keep-probabilities over training"
    if not gate_history_data(study):
        return View("gate_history", title, None, "no trial recorded a learned structure")
    return View("gate_history", title, plot_gate_history(study))


def _structure(study: optuna.Study) -> View:
    title = "Final structure per trial"
    if not gate_history_data(study):
        return View("structure", title, None, "no trial recorded a learned structure")
    return View("structure", title, plot_structure(study))


def _per_objective(
    study: optuna.Study, name: str, title: str, index: int, n: int
) -> tuple[str, str]:
    if n == 1:
        return name, title
    return f"{name}_{index}", f"{title} ({_trials.objective_name(study, index)})"


def _nothing_finished(study: optuna.Study) -> str:
    failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    if failed:
        return f"no complete or pruned trial yet; {failed} trials failed"
    return "no complete or pruned trial yet"


def _make_folder(out_dir: str) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BadInputError(f"out_dir: {out_dir!r} is a file; give a folder for the report")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise BadInputError(f"out_dir: cannot create {out_dir!r}: {err.strerror}") from None


def _write_figure(view: View, out_dir: str) -> str:
    path = os.path.join(out_dir, f"{view.name}.html")
    assert view.figure is not None
    # plotly.js is written once beside the files as plotly.min.js: no network, no copy per figure.
    view.figure.write_html(path, include_plotlyjs="directory", full_html=True)
    return path
