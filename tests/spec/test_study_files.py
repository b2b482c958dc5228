"""Every study file shipped in studies/ reads without error (a user's first contact with the tool)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optuna_bigmodel.spec import load_spec

STUDIES = sorted((Path(__file__).parents[2] / "studies").glob("*.yaml"))


def test_the_study_folder_is_not_empty() -> None:
    assert len(STUDIES) >= 5


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_a_shipped_study_file_reads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem and spec.knobs
