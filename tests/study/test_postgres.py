"""Workers sharing one real PostgreSQL server (started by the test set-up)."""

from __future__ import annotations

import itertools

import optuna
from optuna.trial import TrialState

from optuna_bigmodel import run_study
from optuna_bigmodel.study import open_storage


def test_four_workers_on_postgres_cover_a_grid_exactly_once(write_spec, postgres_url) -> None:
    path = write_spec(
        name="pg_grid",
        knobs={
            "lr": {"axis": "strategy", "choices": [0.05, 0.1, 0.2, 0.4]},
            "offset": {"axis": "structure", "choices": [0.0, 1.0, 2.0]},
        },
        sampler="grid",
        storage=postgres_url,
        budget={},
    )
    run_study(path, workers=4, progress=False)
    study = optuna.load_study(study_name="pg_grid", storage=open_storage(postgres_url))
    trials = study.get_trials()
    points = sorted((t.params["lr"], t.params["offset"]) for t in trials)
    assert points == sorted(itertools.product([0.05, 0.1, 0.2, 0.4], [0.0, 1.0, 2.0]))
    assert {t.state for t in trials} == {TrialState.COMPLETE}  # none lost, none stuck RUNNING
