"""Writing a study's plots to files: one self-contained HTML file per figure."""

from __future__ import annotations

import os

import optuna
import plotly.graph_objects as go

from optuna_bigmodel.visualization._history import plot_history


def write_report(study: optuna.Study, out_dir: str) -> list[str]:
    """Writes the study's figures into `out_dir` (created if needed) and returns the file paths."""
    os.makedirs(out_dir, exist_ok=True)
    figures = {"history": plot_history(study)}
    if _has_intermediate_values(study):
        figures["intermediate_values"] = optuna.visualization.plot_intermediate_values(study)
    return [_write(figure, os.path.join(out_dir, f"{name}.html")) for name, figure in figures.items()]


def _has_intermediate_values(study: optuna.Study) -> bool:
    return any(t.intermediate_values for t in study.get_trials(deepcopy=False))


def _write(figure: go.Figure, path: str) -> str:
    # The plotly library goes inside the file: the report opens without a network.
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path
