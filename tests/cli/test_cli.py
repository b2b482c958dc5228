"""The command line, run as a user runs it: a real process, its output and its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.conftest import REPO


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_bigmodel", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("command", [[], ["run"], ["worker"], ["studies"], ["best"], ["report"]])
def test_help_on_every_command(command: list[str]) -> None:
    result = _cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: optuna-bigmodel" in result.stdout


def test_run_then_studies_best_and_report(write_spec, tmp_path: Path) -> None:
    spec = write_spec(pruner="median")
    result = _cli("run", str(spec), "--n-trials", "3", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "[tiny] trial 2" in result.stderr and "done:" in result.stderr  # progress lines
    assert "best trial: #" in result.stdout
    assert (tmp_path / "runs" / "tiny" / "report" / "history.html").is_file()

    listed = _cli("studies", "--storage", f"sqlite:///{tmp_path / 'study.db'}")
    assert listed.returncode == 0 and listed.stdout.startswith("tiny\t3 trials")

    best = _cli("best", str(spec))
    assert best.returncode == 0 and '"seed":' in best.stdout and "knobs:" in best.stdout

    warm = write_spec("warm.yaml", name="warm", budget={"n_trials": 2})
    warmed = _cli("run", str(warm), "--warm-start-study", "tiny", "--warm-start-top", "1", "--no-plot")
    assert warmed.returncode == 0, warmed.stderr
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    source = optuna.load_study(study_name="tiny", storage=storage)
    target = optuna.load_study(study_name="warm", storage=storage)
    assert target.trials[0].params == source.best_params

    ghost = _cli("best", "--storage", f"sqlite:///{tmp_path / 'study.db'}", "--study", "ghost")
    assert ghost.returncode == 2 and "no study named 'ghost'" in ghost.stderr

    out = tmp_path / "elsewhere"
    report = _cli("report", str(spec), "--out", str(out))
    assert report.returncode == 0 and (out / "history.html").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "{spec}", "--n-trials", "0"], "n_trials"),
        (["run", "{spec}", "--sampler", "annealing"], "annealing"),
        (["run", "{spec}", "--pruner", "sometimes"], "sometimes"),
        (["run", "{spec}", "--storage", "sqlite:////no/such/dir/x.db"], "/no/such/dir"),
        (["run", "{spec}", "--workers", "0"], "workers"),
        (["run", "{spec}", "--storage", "postgresql://u:p@127.0.0.1:1/db"], "Connection refused"),
        (["run", "{unknown_task}"], "no_such_task"),
        (["run", "{dir}/missing.yaml"], "missing.yaml"),
        (["best", "--storage", "sqlite:///{dir}/none.db", "--study", "x"], "none.db' does not exist"),
        (["studies", "--storage", "journal:///{dir}/none.log"], "none.log' does not exist"),
        (["report"], "give a study file"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    write_spec, tmp_path: Path, args: list[str], message: str
) -> None:
    unknown_task = write_spec("unknown.yaml", task={"name": "no_such_task"})
    spec = write_spec()
    args = [a.format(spec=spec, dir=tmp_path, unknown_task=unknown_task) for a in args]
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "study.db").exists()


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntask:\n  name: [unclosed\n")
    result = _cli("run", str(path))
    assert result.returncode == 2
    assert "broken.yaml" in result.stderr and "line" in result.stderr
