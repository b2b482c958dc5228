"""Plotly figures: best-so-far test loss against compute per method, mean and spread over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import statistics

import plotly.graph_objects as go

from benchmarks.quality._run import MethodRun
from benchmarks.quality._setup import METHODS
from benchmarks.quality._summary import best_test_at

COLORS = {"grid": "#636efa", "random": "#00cc96", "tpe_hyperband": "#ef553b", "ours": "#ab63fa"}
POINTS = 60  # compute points per curve


def curve_figure(runs: Sequence[MethodRun], task: str) -> go.Figure:
    """One task: x = compute as a fraction of the grid's, y = best-so-far test loss (mean over
    seeds, shaded from the best to the worst seed)."""
    mine = [r for r in runs if r.task == task]
    grid_compute = statistics.fmean(r.compute for r in mine if r.method == "grid")
    figure = go.Figure()
    for method in METHODS:
        seeds = [r for r in mine if r.method == method]
        if seeds:
            _add_method(figure, method, seeds, grid_compute)
    optimum = next((r.optimum for r in mine if r.optimum is not None), None)
    if optimum is not None:
        figure.add_hline(y=optimum, line_dash="dot", annotation_text="entropy rate (optimum)")
    figure.update_layout(
        title=f"{task}: best-so-far test loss (picked by val) against compute",
        xaxis_title="training steps / grid's total", yaxis_title="test loss", template="plotly_white",
    )  # fmt: skip
    return figure


def _add_method(figure: go.Figure, method: str, seeds: list[MethodRun], grid: float) -> None:
    end = max(r.compute for r in seeds)
    xs = [end * (i + 1) / POINTS for i in range(POINTS)]
    per_x = [[best_test_at(r, x) for r in seeds] for x in xs]
    keep = [(x, [v for v in vals if v is not None]) for x, vals in zip(xs, per_x)]
    keep = [(x / grid, vals) for x, vals in keep if len(vals) == len(seeds)]
    if not keep:
        return
    x = [k[0] for k in keep]
    color = COLORS[method]
    figure.add_scatter(x=x, y=[max(v) for _, v in keep], mode="lines", line_width=0,
                       showlegend=False, hoverinfo="skip", line_color=color)  # fmt: skip
    figure.add_scatter(x=x, y=[min(v) for _, v in keep], mode="lines", line_width=0, fill="tonexty",
                       opacity=0.2, showlegend=False, hoverinfo="skip", line_color=color)  # fmt: skip
    figure.add_scatter(x=x, y=[statistics.fmean(v) for _, v in keep], mode="lines",
                       name=f"{method} (mean of {len(seeds)} seeds)", line_color=color)  # fmt: skip


def write_figures(runs: Sequence[MethodRun], folder: Path) -> Path:
    """All tasks' figures in one self-contained HTML page (plotly.js inlined once)."""
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "quality.html"
    parts = []
    for i, task in enumerate(sorted({r.task for r in runs})):
        parts.append(curve_figure(runs, task).to_html(full_html=False,
                                                      include_plotlyjs=(i == 0)))  # fmt: skip
    page.write_text("<html><body>" + "\n".join(parts) + "</body></html>", encoding="utf-8")
    return page
