"""Our storage stays readable by the tools users already have: Optuna's own command line and
optuna-dashboard see our study, its trials, intermediate values and attributes."""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_bigmodel.visualization._trials import SPEC_ATTR


def _optuna_cli(*args: str) -> Any:
    script = Path(sys.executable).with_name("optuna")
    result = subprocess.run(
        [str(script), *args, "--format", "json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_optuna_cli_lists_our_study_and_trials(
    real_study: optuna.Study, real_study_path: Path
) -> None:
    url = f"sqlite:///{real_study_path / 'study.db'}"
    (study,) = _optuna_cli("studies", "--storage", url)
    assert study["name"] == "tiny" and study["n_trials"] == 4
    assert study["direction"] == ["MINIMIZE"]
    assert study["user_attrs"][SPEC_ATTR]["trainer"]["max_steps"] == 8
    trials = _optuna_cli("trials", "--storage", url, "--study-name", "tiny")
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    for listed, trial in zip(trials, real_study.trials):
        assert listed["state"] == trial.state.name and listed["params"] == trial.params
        assert listed["user_attrs"]["learned"] == trial.user_attrs["learned"]
        assert listed["user_attrs"]["structure"] == trial.user_attrs["structure"]


def _get(app: Any, path: str) -> Any:
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "test",
        "SERVER_PORT": "80", "wsgi.input": BytesIO(), "wsgi.url_scheme": "http",
    }  # fmt: skip
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (status, body[:500])
    return json.loads(body)


def test_optuna_dashboard_shows_our_study(real_study: optuna.Study) -> None:
    dashboard = pytest.importorskip("optuna_dashboard", reason="pip install -e '.[test]'")
    app = dashboard.wsgi(real_study._storage)
    (listed,) = _get(app, "/api/studies")["study_summaries"]
    assert listed["study_name"] == "tiny"
    detail = _get(app, f"/api/studies/{listed['study_id']}")
    trials = detail["trials"]
    assert [t["state"] for t in trials] == [t.state.name.capitalize() for t in real_study.trials]
    for shown, trial in zip(trials, real_study.trials):
        steps = {v["step"]: v["value"] for v in shown["intermediate_values"]}
        assert steps == trial.intermediate_values
        attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
        assert json.loads(attrs["learned"]) == trial.user_attrs["learned"]
    assert detail["best_trials"][0]["number"] == real_study.best_trial.number
