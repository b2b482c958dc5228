from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.visualization.studies import tiny_real_study


@pytest.fixture(scope="session")
def real_study_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of one real tiny study (SQLite), trained once for the whole test session."""
    folder = tmp_path_factory.mktemp("real_study")
    tiny_real_study(folder)
    return folder


@pytest.fixture
def real_study(real_study_path: Path) -> optuna.Study:
    """That study, loaded afresh; tests read it and must not add trials (copy it for that)."""
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{real_study_path / 'study.db'}")
