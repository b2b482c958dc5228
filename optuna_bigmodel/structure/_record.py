"""What a trial records about its gates: keep-probabilities now, and their subsampled history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any
from typing import TYPE_CHECKING

import torch
from torch import nn

from optuna_bigmodel.structure._params import named_gates
from optuna_bigmodel.structure._gate import check_int


if TYPE_CHECKING:
    from optuna_bigmodel.structure._collapse import CollapseEvent
    from optuna_bigmodel.structure._discretise import Structure


def unit_key(gate: str, unit: str) -> str:
    """How records name one unit of a gate: ``"blocks.0.attn.heads_gate[1]"``, ``"act[relu]"``."""
    return f"{gate}[{unit}]"


@torch.no_grad()
def structure_record(module: nn.Module, step: int) -> dict[str, Any]:
    """The keep-probability of every unit of every gate of ``module`` now, at ``step``.

    Returns ``{"step": step, "keep_probs": {unit_key: p}}``; a choice's units are its candidates
    (their probabilities sum to 1).
    """
    probs = {}
    for name, gate in named_gates(module):
        values = gate.keep_probs().tolist()
        probs.update({unit_key(name, u): v for u, v in zip(gate.unit_names(), values)})
    return {"step": step, "keep_probs": probs}


class GateRecorder:
    """Keeps each unit's keep-probability trajectory, subsampled to at most ``max_points``.

    Every recorded step is kept until a trajectory exceeds ``max_points``; then every other point
    is dropped and only every second call is recorded from then on, and so on. The points stay
    evenly spaced whatever the run's length, and the last value is kept apart as ``final``.

    Example:

        .. code::

            recorder = GateRecorder(max_points=200)
            recorder.record(model, step)  # e.g. after every gate step
            structure = discretise(model, target=0.5)
            trial.set_user_attr("structure", recorder.trial_attr(structure))

    Args:
        max_points: The most points a trajectory keeps, at least 2.
    """

    def __init__(self, max_points: int = 200) -> None:
        self.max_points = check_int("GateRecorder", "max_points", max_points, 2)
        self.stride = 1
        self.calls = 0
        self.final: dict[str, float] = {}
        self.trajectories: dict[str, list[list[float]]] = {}

    def record(self, module: nn.Module, step: int) -> None:
        """Record the keep-probabilities of ``module``'s gates at ``step`` (subsampled)."""
        snapshot = structure_record(module, step)["keep_probs"]
        self.final.update(snapshot)
        if self.calls % self.stride == 0:
            for key, value in snapshot.items():
                self.trajectories.setdefault(key, []).append([step, value])
            if any(len(points) > self.max_points for points in self.trajectories.values()):
                self._thin()
        self.calls += 1

    def _thin(self) -> None:
        self.trajectories = {key: points[::2] for key, points in self.trajectories.items()}
        self.stride *= 2

    def trial_attr(
        self, structure: Structure, collapse: Iterable[CollapseEvent] = ()
    ) -> dict[str, Any]:
        """The trial attribute ``structure``: per unit its final keep-probability, whether the
        discretised ``structure`` keeps it and its trajectory; the weight counts; collapses."""
        kept = _kept_keys(structure)
        gates = {
            key: {"final": value, "kept": key in kept, "trajectory": self.trajectories.get(key, [])}
            for key, value in self.final.items()
        }
        return {
            "gates": gates,
            "params_before": structure.params_before,
            "params_after": structure.params_after,
            "collapse": [asdict(event) for event in collapse],
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume recording."""
        trajectories = {key: list(points) for key, points in self.trajectories.items()}
        return {
            "max_points": self.max_points, "stride": self.stride, "calls": self.calls,
            "final": dict(self.final), "trajectories": trajectories,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`."""
        for name in ("max_points", "stride", "calls", "final", "trajectories"):
            setattr(self, name, state[name])


def _kept_keys(structure: Structure) -> set[str]:
    keys = {unit_key(gate, str(unit)) for gate, units in structure.gates.items() for unit in units}
    return keys | {unit_key(gate, choice) for gate, choice in structure.choices.items()}
