"""Plots of studies: each figure is a pure data function plus a thin plotly renderer.

`write_report` puts them all, with a summary in words, on one self-contained HTML page::

    from optuna_bigmodel.visualization import compute_data, write_report

    write_report(study, "report/")  # report/report.html, plus each figure as its own file
    print(compute_data(study).saved_by_pruning)
"""

from optuna_bigmodel.visualization._compute import ComputeData, compute_data, plot_compute
from optuna_bigmodel.visualization._curves import (
    Curve,
    CurvesData,
    curves_data,
    plot_intermediate_values,
)
from optuna_bigmodel.visualization._gates import (
    GateHistory,
    StructureData,
    gate_history_data,
    plot_gate_history,
    plot_structure,
    structure_data,
)
from optuna_bigmodel.visualization._history import HistoryData, history_data, plot_history
from optuna_bigmodel.visualization._learned import (
    LearnedData,
    Trajectory,
    learned_data,
    plot_learned,
)
from optuna_bigmodel.visualization._optimum import (
    OptimumGapData,
    optimum_gap_data,
    plot_optimum_gap,
)
from optuna_bigmodel.visualization._optuna_views import knob_importances, optuna_views
from optuna_bigmodel.visualization._page import View
from optuna_bigmodel.visualization._report import report_views, write_report
from optuna_bigmodel.visualization._summary import (
    BestTrial,
    StudySummary,
    summary_data,
    summary_lines,
)

__all__ = [
    "BestTrial",
    "ComputeData",
    "Curve",
    "CurvesData",
    "GateHistory",
    "HistoryData",
    "LearnedData",
    "OptimumGapData",
    "StructureData",
    "StudySummary",
    "Trajectory",
    "View",
    "compute_data",
    "curves_data",
    "gate_history_data",
    "history_data",
    "knob_importances",
    "learned_data",
    "optimum_gap_data",
    "optuna_views",
    "plot_compute",
    "plot_gate_history",
    "plot_history",
    "plot_intermediate_values",
    "plot_learned",
    "plot_optimum_gap",
    "plot_structure",
    "report_views",
    "structure_data",
    "summary_data",
    "summary_lines",
    "write_report",
]
