"""Plots of studies: each figure is a pure data function plus a thin plotly renderer."""

from optuna_bigmodel.visualization._history import HistoryData, history_data, plot_history
from optuna_bigmodel.visualization._report import write_report

__all__ = ["HistoryData", "history_data", "plot_history", "write_report"]
