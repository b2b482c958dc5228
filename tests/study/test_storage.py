"""Opening storages: the default SQLite file, bad URLs, and many writers on one SQLite file."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import optuna
import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.study import default_storage_url, open_storage, run_trials


def test_default_storage_is_an_sqlite_file_in_the_run_folder(tmp_path: Path) -> None:
    url = default_storage_url(str(tmp_path / "runs"), "demo")
    assert url == f"sqlite:///{tmp_path / 'runs' / 'demo' / 'study.db'}"
    assert (tmp_path / "runs" / "demo").is_dir()
    optuna.create_study(storage=open_storage(url), study_name="demo")
    assert (tmp_path / "runs" / "demo" / "study.db").is_file()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("not a url", "not a valid SQLAlchemy URL"),
        ("nosuchdb://host/db", "Can't load plugin"),
        ("sqlite:////no/such/folder/x.db", "folder '/no/such/folder' does not exist"),
        ("sqlite://", "in-memory SQLite database cannot be shared"),
        ("journal:////no/such/folder/x.log", "does not exist"),
        ("", "non-empty URL"),
    ],
)
def test_bad_url_is_refused_with_its_value_and_reason(url: str, reason: str) -> None:
    with pytest.raises(BadInputError) as err:
        open_storage(url)
    assert reason in str(err.value)
    if url:
        assert repr(url) in str(err.value)


def test_sqlite_heartbeats_are_on(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}")
    assert storage.get_heartbeat_interval() is not None
    assert open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat=False).get_heartbeat_interval() is None


def test_journal_file_storage(tmp_path: Path) -> None:
    storage = open_storage(f"journal:///{tmp_path / 'j.log'}")
    study = optuna.create_study(storage=storage, study_name="j")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert len(study.trials) == 3


def _hammer(url: str) -> None:
    study = optuna.load_study(study_name="busy", storage=open_storage(url))
    run_trials(study, lambda t: t.suggest_float("x", 0, 1), exhaustive=False, n_trials=80, timeout=None)


def test_four_writers_on_one_sqlite_file_never_hit_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    optuna.create_study(storage=open_storage(url), study_name="busy")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(url,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    study = optuna.load_study(study_name="busy", storage=open_storage(url))
    states = {t.state for t in study.trials}
    assert states == {optuna.trial.TrialState.COMPLETE}
    # Each worker stops when the study holds 80 trials; a few may start in the same instant.
    assert 80 <= len(study.trials) <= 83
    assert os.path.getsize(tmp_path / "busy.db") > 0
