"""The notebooks run top to bottom on the CPU: a failing cell fails the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]'")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"


def _execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if one fails
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def test_both_notebooks_are_here_and_stored_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == ["lightning_integration.ipynb", "quickstart.ipynb"]
    for path in NOTEBOOKS:
        assert _outputs(nbformat.read(path, as_version=4)) == [], f"{path.name}: clear its outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's run folders land here, not in /tmp
    outputs = _outputs(_execute(path, tmp_path))
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(PLOTLY in o.get("data", {}) for o in outputs), "no plot was shown"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "report.html" in text and "Best trial: #" in text
    if path.stem == "quickstart":
        assert "no learned structure" in text and "trials with a learned structure: []" in text
