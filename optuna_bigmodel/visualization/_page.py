"""The report page: one self-contained HTML file, plotly.js inlined once, no network needed."""

from __future__ import annotations

import html
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline


@dataclass(frozen=True)
class View:
    """One figure of a report: its file name, a heading, and the figure or why there is none."""

    name: str
    title: str
    figure: go.Figure | None
    note: str | None = None


def render_page(title: str, summary: list[str], views: list[View]) -> str:
    """The whole page: the summary in words, a table of contents, then each view in turn."""
    parts = [
        _HEAD.format(title=html.escape(title), style=_STYLE, plotly=plotly.offline.get_plotlyjs()),
        f"<h1>{html.escape(title)}</h1>",
        '<section id="summary"><h2>Summary</h2><ul>',
        *(f"<li>{html.escape(line)}</li>" for line in summary),
        "</ul></section>",
        _contents(views),
        *(_section(view) for view in views),
        "</body></html>",
    ]
    return "\n".join(parts)


def _contents(views: list[View]) -> str:
    links = " · ".join(f'<a href="#{v.name}">{html.escape(v.title)}</a>' for v in views)
    return f'<nav aria-label="contents">{links}</nav>'


def _section(view: View) -> str:
    body = []
    if view.figure is not None:
        body.append(_figure_div(view))
    if view.note:
        body.append(f'<p class="note">{html.escape(view.note)}</p>')
    return f'<section id="{view.name}"><h2>{html.escape(view.title)}</h2>{"".join(body)}</section>'


def _figure_div(view: View) -> str:
    assert view.figure is not None
    return pio.to_html(
        view.figure, include_plotlyjs=False, full_html=False, div_id=f"figure-{view.name}",
        default_width="100%", config={"responsive": True, "displaylogo": False},
    )  # fmt: skip


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
<script type="text/javascript">{plotly}</script>
</head><body>"""

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
#summary li { margin: .35em 0; line-height: 1.4; }
nav { margin: 1em 0; line-height: 1.8; } nav a { color: #1f5fa0; }
.note { color: #666; font-style: italic; }
"""
