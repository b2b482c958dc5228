"""`optuna-bigmodel report` on studies stored in SQLite: once as a real process, as a user runs it,
then in-process through `main` (the same code, without paying for a Python start each time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from optuna_bigmodel.cli import main
from optuna_bigmodel.visualization._trials import SPEC_ATTR
from tests.conftest import REPO


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_bigmodel", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _store_studies(url: str) -> None:
    """A study as our runner writes it (one trial still running) and a two-objective one."""
    study = optuna.create_study(study_name="tiny", storage=url)
    study.set_user_attr(SPEC_ATTR, {"metric": "val_loss", "trainer": {"max_steps": 8}})
    for lr, state in (
        (0.1, TrialState.COMPLETE),
        (0.3, TrialState.PRUNED),
        (0.2, TrialState.COMPLETE),
    ):
        trial = study.ask()
        trial.suggest_float("lr", 0.01, 1.0, log=True)
        trial.set_user_attr("learned", {"lr": {"final": lr, "trajectory": [[0, 0.05], [8, lr]]}})
        for step in (4, 8) if state == TrialState.COMPLETE else (4,):
            trial.report(lr + 1.0 / step, step)
        study.tell(trial, lr + 0.125 if state == TrialState.COMPLETE else None, state=state)
    study.ask().report(0.9, 4)  # still running
    pareto = optuna.create_study(study_name="pareto", storage=url, directions=["minimize"] * 2)
    pareto.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1)), 4)


def test_report_from_storage_and_study(write_spec, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _store_studies(url)
    out = tmp_path / "out"
    result = _cli("report", "--storage", url, "--study", "tiny", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out / 'report.html'}: the summary and 7 figures")
    assert "history.html, intermediate_values.html, compute.html, learned.html" in result.stdout
    page = (out / "report.html").read_text()
    assert "Best trial: #0, val_loss = 0.225." in page and "still running (1 trial" in page

    spec = write_spec()  # names the same storage and the study "tiny"; default out in run_dir
    assert main(["report", str(spec)]) == 0
    assert (tmp_path / "runs" / "tiny" / "report" / "report.html").is_file()


def test_report_of_a_multi_objective_study_in_the_working_folder(
    tmp_path: Path, monkeypatch
) -> None:
    _store_studies(f"sqlite:///{tmp_path / 'study.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--storage", "sqlite:///study.db", "--study", "pareto"]) == 0
    assert (tmp_path / "pareto" / "report" / "pareto_front.html").is_file()


def test_report_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _store_studies(url)
    (tmp_path / "a_file").write_text("")
    cases = [
        (["--study", "tiny", "--out", str(tmp_path / "a_file")], "out_dir: "),
        (["--study", "ghost"], "no study named 'ghost'"),
        ([], "give a study file or --study NAME"),
    ]
    for args, message in cases:
        assert main(["report", "--storage", url, *args]) == 2
        assert message in capsys.readouterr().err
