"""Every input path fails cleanly: the message names what was wrong, the exit code is 2, and the
storage that already holds a study is left byte for byte as it was."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from optuna_bigmodel.cli import main
from tests.conftest import tiny_spec

# (case id, edit to the valid study file or None, extra CLI args, words the message must contain)
# An edit is a dict merged into the top level, or a function of the spec dict, or raw YAML text.
CASES: list[tuple[str, Any, list[str], list[str]]] = [
    ("malformed_yaml", "name: x\ntask: {name: [unclosed\n", [], ["line", "study.yaml"]),
    ("tab_indent", "name: x\ntask:\n\tname: tiny\n", [], ["line"]),
    ("empty_file", "", [], ["empty"]),
    ("top_level_list", "- name: x\n", [], ["a mapping"]),
    ("unknown_top_key", {"prunner": "median"}, [], ["prunner", "did you mean 'pruner'"]),
    ("unknown_knob_field", lambda s: s["knobs"]["lr"].update(hgh=1.0), [], ["hgh", "did you mean 'high'"]),
    ("n_trials_string", {"budget": {"n_trials": "ten"}}, [], ["budget.n_trials", "'ten'"]),
    ("n_trials_zero", {"budget": {"n_trials": 0}}, [], ["budget.n_trials", "got 0"]),
    ("timeout_negative", {"budget": {"timeout": -3}}, [], ["budget.timeout", "got -3"]),
    ("empty_choices", lambda s: s["knobs"]["offset"].update(choices=[]), [], ["knobs.offset.choices", "empty"]),
    ("duplicate_choices", lambda s: s["knobs"]["offset"].update(choices=[1.0, 1.0]), [], ["knobs.offset.choices", "1.0"]),
    ("low_not_below_high", lambda s: s["knobs"]["lr"].update(low=0.5, high=0.1), [], ["knobs.lr", "0.5", "0.1"]),
    ("log_with_zero_low", lambda s: s["knobs"]["lr"].update(low=0.0), [], ["knobs.lr", "log", "> 0"]),
    ("bad_axis", lambda s: s["knobs"]["lr"].update(axis="speed"), [], ["knobs.lr.axis", "'speed'", "strategy"]),
    ("learn_mode", lambda s: s["knobs"]["lr"].update(mode="learn"), [], ["knobs.lr", "learn"]),
    ("fixed_without_value", {"knobs": {"lr": {"axis": "strategy", "mode": "fixed"}}}, [], ["knobs.lr", "value"]),
    ("grid_value_outside", lambda s: s["knobs"]["lr"].update(grid=[0.9]), [], ["knobs.lr.grid", "0.9"]),
    ("unknown_sampler", {"sampler": "annealing"}, [], ["sampler", "'annealing'"]),
    ("unknown_sampler_kwarg", {"sampler": {"name": "tpe", "kwargs": {"n_startup": 3}}}, [], ["n_startup", "n_startup_trials"]),
    ("unknown_pruner", {"pruner": "sometimes"}, [], ["pruner", "'sometimes'"]),
    ("percentile_without_value", {"pruner": "percentile"}, [], ["pruner", "percentile"]),
    ("val_check_after_end", {"trainer": {"max_steps": 8, "val_check_interval": 9}}, [], ["val_check_interval", "got 9"]),
    ("devices_zero", {"trainer": {"devices": 0}}, [], ["trainer.devices", "got 0"]),
    ("bad_precision", {"trainer": {"precision": "8-bit"}}, [], ["trainer.precision", "'8-bit'"]),
    ("unknown_task", {"task": {"name": "markov_gtp"}}, [], ["markov_gtp", "markov_gpt"]),
    ("task_bad_module", {"task": {"name": "no_such_pkg.tasks:build"}}, [], ["no_such_pkg"]),
    ("task_missing_attr", {"task": {"name": "optuna_bigmodel.testing:nothing_here"}}, [], ["nothing_here"]),
    ("knob_unknown_to_task", {"task": {"name": "markov_gpt"}}, [], ["knobs.offset", "markov_gpt", "accepts"]),
    ("bad_storage_url_in_file", {"storage": "not a url"}, [], ["storage", "'not a url'"]),
    ("flag_n_trials_zero", None, ["--n-trials", "0"], ["n_trials", "got 0"]),
    ("flag_unknown_sampler", None, ["--sampler", "anneal"], ["sampler", "'anneal'"]),
    ("flag_unknown_pruner", None, ["--pruner", "medain"], ["'medain'", "did you mean 'median'"]),
    ("flag_workers_zero", None, ["--workers", "0"], ["workers", "got 0"]),
    ("flag_max_steps_zero", None, ["--max-steps", "0"], ["max_steps", "got 0"]),
    ("flag_seed_negative", None, ["--seed", "-1"], ["seed", "got -1"]),
    ("flag_storage_folder_missing", None, ["--storage", "sqlite:////no/such/dir/x.db"], ["/no/such/dir", "does not exist"]),
    ("flag_storage_unknown_dialect", None, ["--storage", "nosuchdb://h/db"], ["nosuchdb"]),
    ("flag_warm_start_missing_study", None, ["--warm-start-study", "ghost"], ["no study named 'ghost'"]),
    ("flag_warm_start_top_zero", None, ["--warm-start-study", "tiny", "--warm-start-top", "0"], ["warm_start_top", "got 0"]),
    ("changed_search_space", lambda s: s["knobs"].update(width={"axis": "structure", "choices": [0, 4]}), [], ["different knobs", "'width'", "--allow-changed-space"]),
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    """A valid study file whose study already holds one trial in its SQLite file."""
    spec_path = tmp_path / "study.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec(tmp_path, budget={"n_trials": 1})))
    assert main(["run", str(spec_path), "--quiet", "--no-plot"]) == 0
    return spec_path, tmp_path / "study.db"


def _apply(spec_path: Path, edit: Any) -> None:
    if edit is None:
        return
    if isinstance(edit, str):
        spec_path.write_text(edit)
        return
    spec = yaml.safe_load(spec_path.read_text())
    if callable(edit):
        edit(spec)
    else:
        spec.update(edit)
    spec_path.write_text(yaml.safe_dump(spec))


def test_there_are_at_least_30_distinct_cases() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case, edit, flags, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(stored, capsys, case: str, edit: Any, flags: list[str], words: list[str]) -> None:
    spec_path, db = stored
    before = _digest(db)
    files_before = sorted(os.listdir(db.parent))
    _apply(spec_path, edit)
    code = main(["run", str(spec_path), "--quiet", "--no-plot", *flags])
    message = capsys.readouterr().err
    assert code == 2, message
    assert message.startswith("error: ")
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert _digest(db) == before  # nothing stored was changed
    assert sorted(os.listdir(db.parent)) == files_before  # and nothing new was written beside it


@pytest.mark.parametrize("content", ["foreign", "corrupt"])
def test_foreign_or_corrupt_database_is_refused_untouched(tmp_path: Path, capsys, content: str) -> None:
    db = tmp_path / "other.db"
    if content == "foreign":
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE customers (id INTEGER)")
    else:
        db.write_bytes(os.urandom(8192))
    before = _digest(db)
    spec_path = tmp_path / "study.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec(tmp_path, storage=f"sqlite:///{db}")))
    assert main(["run", str(spec_path), "--quiet", "--no-plot"]) == 2
    message = capsys.readouterr().err
    assert "other.db" in message and "left untouched" in message
    assert _digest(db) == before
