"""The quality benchmark (benchmarks/quality): its bookkeeping checked by hand, and its quick mode
run once end to end as a smoke test (no timing is asserted: the machine is shared)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import torch

from benchmarks.quality.__main__ import _missing_methods
from benchmarks.quality.__main__ import main
from benchmarks.quality._run import MethodRun
from benchmarks.quality._run import TrialRecord
from benchmarks.quality._setup import QUICK
from benchmarks.quality._setup import steps_of
from benchmarks.quality._setup import TASKS
from benchmarks.quality._summary import best_so_far
from benchmarks.quality._summary import best_test_at
from optuna_bigmodel.structure import apply_structure
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import structure_knobs
from optuna_bigmodel.tasks import resolve_task


def _trial(number: int, compute: int, val: float | None, test: float | None) -> TrialRecord:
    state = "COMPLETE" if val is not None else "PRUNED"
    return TrialRecord(number, state, compute, val, test, {}, None)


def test_best_so_far_picks_by_val_and_counts_every_trials_compute() -> None:
    trials = [_trial(0, 100, 2.0, 2.1), _trial(1, 40, None, None), _trial(2, 0, None, None),
              _trial(3, 100, 2.5, 1.0), _trial(4, 100, 1.5, 1.7)]  # fmt: skip
    run = MethodRun("t", "m", 0, None, 1.0, trials)
    # Trial 3 has the lowest test loss but a worse val than trial 0: it is never the pick.
    assert best_so_far(run) == [(100, 2.1), (340, 1.7)]
    assert run.compute == 340
    assert best_test_at(run, 99) is None and best_test_at(run, 339) == 2.1 and best_test_at(run, 340) == 1.7


def _within_budget(task: str) -> int:
    """Structures of the task's benchmark model within its budget, counted by brute force."""
    setup = TASKS[task]

    def build() -> torch.nn.Module:
        return resolve_task(task).build({}, setup.model, {}, 0).module

    knobs = structure_knobs(build())
    count = 0
    for values in itertools.product(*(k.grid_values() for k in knobs)):
        module = build()
        apply_structure(module, dict(zip((k.name for k in knobs), values)))
        size = discretise(module)
        count += size.params_after <= setup.budget * size.params_before
    return count


def test_a_run_without_every_method_is_named_before_any_table_is_drawn() -> None:
    # --only ours without --reuse used to crash in the summary, after the studies had run.
    runs = [MethodRun("markov_gpt", m, 0, None, 0.0, [])
            for m in ("grid", "random", "tpe_hyperband", "ours")]  # fmt: skip
    assert _missing_methods(runs) == []
    assert _missing_methods(runs[3:]) == [
        "markov_gpt/0/grid", "markov_gpt/0/random", "markov_gpt/0/tpe_hyperband"
    ]


def test_quick_mode_runs_every_method_and_counts_compute_honestly(tmp_path: Path) -> None:
    main(["--quick", "--seeds", "1", "--jobs", "1", "--out", str(tmp_path)])
    runs = [MethodRun.from_dict(r) for r in json.loads((tmp_path / "results.json").read_text())]
    assert sorted((r.task, r.method) for r in runs) == sorted(
        itertools.product(TASKS, ("grid", "random", "tpe_hyperband", "ours")))
    for task in TASKS:
        steps, _ = steps_of(TASKS[task], QUICK)
        by = {r.method: r for r in runs if r.task == task}
        grid = by["grid"]
        # The grid trains each structure within budget once per strategy point (2 optimisers x 2
        # rates in quick mode) for the full run, and spends nothing on the others.
        trained = [t for t in grid.trials if t.compute > 0]
        assert len(trained) == _within_budget(task) * 4
        assert {t.compute for t in trained} == {steps} and {t.state for t in trained} == {"COMPLETE"}
        # Random and TPE stop once they spent their share of the grid's compute, not before.
        share = round(QUICK.outer_share * grid.compute)
        for method in ("random", "tpe_hyperband"):
            spent = by[method].compute
            last = by[method].trials[-1].compute
            assert spent - last < share <= spent
        # Ours: a search batch per training step, so a complete run costs twice its steps.
        ours = [t for t in by["ours"].trials if t.state == "COMPLETE"]
        assert ours and all(t.compute == 2 * steps for t in ours)
        assert all(t.learned["size"] <= TASKS[task].budget for t in ours)
    page = (tmp_path / "quality.html").read_text()
    assert page.count("Plotly.newPlot") == len(TASKS) and "best-so-far test loss" in page
