"""The report: one self-contained page plus the figures as files, on finished, running,
failed-only and multi-objective studies; then the page opened in headless Chromium."""

from __future__ import annotations

import html
from pathlib import Path

import optuna
import plotly.offline
import pytest

from optuna_bigmodel import BadInputError
from optuna_bigmodel.visualization import summary_data, summary_lines, write_report
from tests.conftest import REPO
from tests.visualization import chromium
from tests.visualization.studies import failed_only_study, in_memory_copy, multi_objective_study

SINGLE = [
    "history", "intermediate_values", "optimum_gap", "compute", "learned", "gate_history",
    "structure", "param_importances", "parallel_coordinate", "slice",
]  # fmt: skip
MULTI = [
    "history_0", "history_1", "compute_0", "compute_1", "learned", "pareto_front",
    "param_importances", "parallel_coordinate_0", "slice_0", "parallel_coordinate_1", "slice_1",
]  # fmt: skip
SCREENSHOT = REPO / "runs" / "test-artifacts" / "report.png"


@pytest.fixture(scope="module")
def reports(real_study_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report page of each kind of study, written once for this module."""
    out = tmp_path_factory.mktemp("reports")
    real = optuna.load_study(study_name="tiny", storage=f"sqlite:///{real_study_path / 'study.db'}")
    studies = {"real": real, "failed": failed_only_study(out), "multi": multi_objective_study()}
    return {kind: Path(write_report(study, str(out / kind))[0]) for kind, study in studies.items()}


def _names(page: Path) -> list[str]:
    return sorted(p.stem for p in page.parent.glob("*.html") if p.name != "report.html")


def test_real_study_report_files(real_study: optuna.Study, reports: dict[str, Path]) -> None:
    page = reports["real"]
    assert page.name == "report.html" and _names(page) == sorted(SINGLE)
    text = page.read_text()
    assert text.count("Plotly.newPlot(") == len(SINGLE)
    assert text.count("* plotly.js v") == 1  # the library is inlined once, for every figure
    ours = text.replace(plotly.offline.get_plotlyjs(), "")
    assert "http" not in ours and "<script src" not in ours  # nothing to download
    for line in summary_lines(summary_data(real_study)):
        assert f"<li>{html.escape(line)}</li>" in text
    figure = (page.parent / "history.html").read_text()
    assert 'src="plotly.min.js"' in figure and "Plotly.newPlot(" in figure
    assert (page.parent / "plotly.min.js").stat().st_size > 1_000_000


def test_failed_only_study_says_so(reports: dict[str, Path]) -> None:
    text = reports["failed"].read_text()
    assert "All 3 finished trials failed, so there is no result yet." in text
    assert "Why trials failed: " in text
    assert "no complete or pruned trial yet; 3 trials failed" in text
    assert "Plotly.newPlot(" not in text and _names(reports["failed"]) == []


def test_multi_objective_report(reports: dict[str, Path]) -> None:
    page = reports["multi"]
    assert _names(page) == sorted(MULTI)
    text = page.read_text()
    assert "Pareto front: " in text and "Optimisation history (size)" in text
    assert (
        "no trial reported intermediate values" in text
    )  # Optuna has no pruning with 2 objectives


def test_running_study_report(real_study: optuna.Study, tmp_path: Path) -> None:
    study = in_memory_copy(real_study)
    running = study.ask()
    running.report(1.5, step=2)
    page = Path(write_report(study, str(tmp_path))[0])
    text = page.read_text()
    assert "The study is still running (1 trial in progress)." in text
    assert "1 still running" in text  # the history's title
    assert '"name":"running"' in (tmp_path / "intermediate_values.html").read_text()


def test_out_must_be_a_folder(real_study: optuna.Study, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(BadInputError, match="out_dir: .*taken.* is a file"):
        write_report(real_study, str(tmp_path / "taken"))


@pytest.mark.parametrize("kind", ["real", "failed", "multi"])
def test_page_in_chromium_no_errors_every_plot_drawn(reports: dict[str, Path], kind: str) -> None:
    binary = chromium.chromium_or_skip()
    page = chromium.load(binary, reports[kind])
    assert page.console == []  # no JavaScript error, not even a warning
    drawn = chromium.rendered_figures(page.dom)
    assert sorted(drawn) == _names(reports[kind]) and all(drawn.values()), drawn
    if kind == "real":
        png = chromium.screenshot(binary, reports[kind], SCREENSHOT, height=6000)
        print(f"screenshot of the report: {png}")


def test_chromium_check_catches_errors(tmp_path: Path) -> None:
    """The check above would fail on a page whose plot cannot be drawn (here: no plotly.js)."""
    binary = chromium.chromium_or_skip()
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<html><body><div id="figure-x" class="plotly-graph-div"></div>'
        '<script>Plotly.newPlot("figure-x", [{"y": [1, 2]}]);</script></body></html>'
    )
    page = chromium.load(binary, broken)
    assert len(page.console) == 1 and "Plotly is not defined" in page.console[0]
    assert chromium.rendered_figures(page.dom) == {"x": False}
