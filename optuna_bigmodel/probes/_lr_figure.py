"""The LR range test as a plotly figure: a thin renderer of :class:`LRRangeResult`'s data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go


if TYPE_CHECKING:
    from optuna_bigmodel.probes._lr_range import LRRangeResult


def lr_range_figure(result: LRRangeResult) -> go.Figure:
    """Loss against learning rate (log axis): raw points, smoothed line, the marked rates.

    Example:

        .. code-block:: python

            lr_range_figure(result).write_html("lr_range.html", include_plotlyjs=True)
    """
    figure = go.Figure()
    raw = {"size": 4, "opacity": 0.45}
    figure.add_scatter(
        x=result.lrs, y=result.losses, mode="markers", name="loss after the update", marker=raw
    )
    figure.add_scatter(x=result.lrs, y=result.smoothed, mode="lines", name="smoothed loss")
    marks = (
        (result.suggestion, f"suggested ({result.rule})", "green"),
        (result.min_loss_lr, "lowest smoothed loss", "grey"),
        (result.diverged_lr, "diverged", "red"),
    )
    # Vertical lines as traces, not shapes: a shape's annotation on a log axis needs log10 values.
    low, high = _loss_span(result)
    for rate, label, colour in marks:
        if rate is not None:
            line = {"dash": "dash", "color": colour}
            name = f"{label}: {rate:.3g}"
            figure.add_scatter(x=[rate, rate], y=[low, high], mode="lines", name=name, line=line)
    figure.update_xaxes(type="log", title_text="learning rate")
    figure.update_yaxes(title_text="training loss")
    figure.update_layout(title=f"LR range test: {result.stop_reason}", template="plotly_white")
    return figure


def _loss_span(result: LRRangeResult) -> tuple[float, float]:
    values = [*result.losses, *result.smoothed, result.initial_loss]
    return min(values), max(values)
