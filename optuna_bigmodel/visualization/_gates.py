"""Structure gates: keep-probabilities over training (per trial) and the final structure of each.

A trial that learned its structure records it in its `structure` user attribute:
``{"gates": {gate: {"final": keep_prob, "kept": bool, "trajectory": [[step, keep_prob], ...]}},
"params_before": int, "params_after": int}``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.visualization import _trials

MAX_TRIALS_IN_MENU = 20  # the gate-history figure lets one pick among this many trials at most


@dataclass(frozen=True)
class GateHistory:
    """One trial's gates over training: ``keep[g][s]`` is gate g's keep-probability at steps[s]."""

    number: int
    state: str
    gates: list[str]
    steps: list[int]  # every step at which some gate was recorded
    keep: list[list[float | None]]  # None before the gate's first record


@dataclass(frozen=True)
class StructureData:
    """The structure each trial ended with: ``keep[t][g]`` is trial numbers[t]'s gate gates[g]."""

    numbers: list[int]
    states: list[str]
    gates: list[str]  # every gate any trial recorded, in the order first seen
    keep: list[list[float | None]]  # final keep-probability; None where the trial lacks the gate
    kept: list[list[bool | None]]  # whether the discretised structure keeps it
    params_before: list[int | None]
    params_after: list[int | None]


def gate_history_data(study: optuna.Study) -> list[GateHistory]:
    """The gate trajectories of every trial that recorded a structure, best trial first.

    Example:
        .. code-block:: python

            best = gate_history_data(study)[0]
            print(best.number, dict(zip(best.gates, (row[-1] for row in best.keep))))
    """
    return [_history(trial, gates) for trial, gates in _ranked(study)]


def structure_data(study: optuna.Study) -> StructureData:
    """The final keep-probabilities and kept gates of every trial that recorded a structure."""
    trials = _with_gates(study)
    names: list[str] = []
    for _, gates in trials:
        names += [name for name in gates if name not in names]
    records = [(t.user_attrs["structure"], gates) for t, gates in trials]
    return StructureData(
        numbers=[t.number for t, _ in trials],
        states=[t.state.name for t, _ in trials],
        gates=names,
        keep=[[_final(gates.get(n)) for n in names] for _, gates in records],
        kept=[[_kept(gates.get(n)) for n in names] for _, gates in records],
        params_before=[_count(r.get("params_before")) for r, _ in records],
        params_after=[_count(r.get("params_after")) for r, _ in records],
    )


def plot_gate_history(study: optuna.Study, trial_number: int | None = None) -> go.Figure:
    """Keep-probabilities over training as a heatmap; a menu picks the trial (best first)."""
    histories = gate_history_data(study)
    if trial_number is not None:
        histories = [h for h in histories if h.number == trial_number]
        if not histories:
            raise BadInputError(f"trial_number: trial {trial_number} recorded no structure gates")
    histories = histories[:MAX_TRIALS_IN_MENU]
    figure = go.Figure([_heatmap(h, visible=i == 0) for i, h in enumerate(histories)])
    if len(histories) > 1:
        figure.update_layout(updatemenus=[_menu(histories)])
    title = (
        f"Gate keep-probabilities over training, trial #{histories[0].number}" if histories else ""
    )
    figure.update_layout(title=title, xaxis_title="training step", yaxis_title="gate")
    return figure


def plot_structure(study: optuna.Study) -> go.Figure:
    """The final structure per trial as a heatmap: keep-probability, with kept / cut written in."""
    data = structure_data(study)
    labels = [
        _trial_label(n, b, a)
        for n, b, a in zip(data.numbers, data.params_before, data.params_after)
    ]
    text = [["" if k is None else ("kept" if k else "cut") for k in row] for row in data.kept]
    figure = go.Figure(go.Heatmap(
        z=data.keep, x=data.gates, y=labels, text=text, texttemplate="%{text}",
        zmin=0.0, zmax=1.0, colorscale="Blues", colorbar={"title": "keep prob."},
        hovertemplate="%{y}<br>gate %{x}<br>keep %{z:.3f} (%{text})<extra></extra>",
    ))  # fmt: skip
    figure.update_layout(
        title="Final structure per trial", xaxis_title="gate", yaxis_title="trial",
        yaxis={"autorange": "reversed", "type": "category"},
        height=min(2000, max(350, 120 + 28 * len(labels))),
    )  # fmt: skip
    return figure


def _with_gates(study: optuna.Study) -> list[tuple[FrozenTrial, dict[str, dict[str, Any]]]]:
    found = []
    for trial in study.get_trials(deepcopy=False):
        gates = gate_records(trial.user_attrs.get("structure"))
        if gates:
            found.append((trial, gates))
    return found


def gate_records(structure: Any) -> dict[str, dict[str, Any]]:
    """The per-gate records of a `structure` attribute; {} when it has none in our format."""
    gates = structure.get("gates") if isinstance(structure, dict) else None
    if not isinstance(gates, dict):
        return {}
    return {str(name): record for name, record in gates.items() if isinstance(record, dict)}


def _ranked(study: optuna.Study) -> list[tuple[FrozenTrial, dict[str, dict[str, Any]]]]:
    found = _with_gates(study)
    if len(study.directions) != 1:
        return found
    sign = 1.0 if _trials.is_minimize(study, 0) else -1.0

    def key(item: tuple[FrozenTrial, Any]) -> tuple[int, float, int]:
        value = _trials.trial_value(item[0]) if item[0].state.name == "COMPLETE" else None
        return (value is None, 0.0 if value is None else sign * value, item[0].number)

    return sorted(found, key=key)


def _history(trial: FrozenTrial, gates: dict[str, dict[str, Any]]) -> GateHistory:
    tracks = {name: _trials.points(gate.get("trajectory")) for name, gate in gates.items()}
    steps = sorted({s for track_steps, _ in tracks.values() for s in track_steps})
    keep = [[_at(track, step) for step in steps] for track in tracks.values()]
    return GateHistory(trial.number, trial.state.name, list(tracks), steps, keep)


def _at(track: tuple[list[int], list[float]], step: int) -> float | None:
    """The gate's value at `step`: its last record at or before it (records are sparse)."""
    steps, values = track
    index = bisect.bisect_right(steps, step) - 1
    return values[index] if index >= 0 else None


def _final(gate: dict[str, Any] | None) -> float | None:
    if gate is None:
        return None
    final = _trials.number_or_none(gate.get("final"))
    if final is None:
        _, values = _trials.points(gate.get("trajectory"))
        final = values[-1] if values else None
    return final


def _kept(gate: dict[str, Any] | None) -> bool | None:
    kept = None if gate is None else gate.get("kept")
    return kept if isinstance(kept, bool) else None


def _count(value: Any) -> int | None:
    number = _trials.number_or_none(value)
    return None if number is None else int(number)


def _trial_label(number: int, before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return f"#{number}"
    return f"#{number}: {_short(before)} → {_short(after)} params"


def _short(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def _heatmap(history: GateHistory, visible: bool) -> go.Heatmap:
    return go.Heatmap(
        z=history.keep, x=history.steps, y=history.gates, zmin=0.0, zmax=1.0,
        colorscale="Blues", colorbar={"title": "keep prob."}, visible=visible,
        name=f"trial #{history.number}",
        hovertemplate=f"trial #{history.number}<br>"
        "gate %{y}<br>step %{x}<br>keep %{z:.3f}<extra></extra>",
    )  # fmt: skip


def _menu(histories: list[GateHistory]) -> dict[str, Any]:
    buttons = [
        {
            "label": f"trial #{h.number} ({h.state.lower()})",
            "method": "update",
            "args": [
                {"visible": [j == i for j in range(len(histories))]},
                {"title": f"Gate keep-probabilities over training, trial #{h.number}"},
            ],
        }
        for i, h in enumerate(histories)
    ]
    return {"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.15}
