from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from optuna_bigmodel.testing import postgres_bin_dir, running_postgres

REPO = Path(__file__).resolve().parents[1]

# Worker processes and CLI runs are separate Python processes; they import the package from here.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
)


def tiny_spec(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    """A study of the fast test task, storing in tmp_path; `fields` replace top-level keys."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "task": {"name": "optuna_bigmodel.testing:tiny_task"},
        "knobs": {
            "lr": {"axis": "strategy", "low": 0.01, "high": 0.5, "log": True},
            "offset": {"axis": "structure", "choices": [0.0, 1.0, 2.0]},
        },
        "sampler": {"name": "random"},
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "run_dir": str(tmp_path / "runs"),
        "trainer": {
            "max_steps": 8, "val_check_interval": 4, "accelerator": "cpu", "progress_bar": False,
        },
        "budget": {"n_trials": 4},
    }
    spec.update(fields)
    return spec


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session; CI must have one (.ci/run installs it)."""
    if postgres_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs PostgreSQL: .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql); CI runs this")
    with running_postgres(durable=False) as url:
        yield url


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(_file: str = "study.yaml", **fields: Any) -> Path:
        path = tmp_path / _file
        path.write_text(yaml.safe_dump(tiny_spec(tmp_path, **fields), sort_keys=False))
        return path

    return write
