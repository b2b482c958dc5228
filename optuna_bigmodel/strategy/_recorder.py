"""Records of learned knobs: the final value and a subsampled trajectory of each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna_bigmodel._errors import BadInputError


class TrajectoryRecorder:
    """Keeps every learned knob's last value and at most ``max_points`` points of its trajectory.

    The kept points are evenly spaced in record calls: when the buffer is full, every other point
    is dropped and the spacing doubles, so memory stays bounded however long the run. The first
    and the latest point are always in the output.

    Example:

        .. code-block:: python

            from optuna_bigmodel.strategy import TrajectoryRecorder

            recorder = TrajectoryRecorder(max_points=200)
            for step in range(10_000):
                recorder.record(step, {"lr": 0.1 / (1 + step)})
            out = recorder.to_dict()
            assert len(out["lr"]["trajectory"]) <= 200 and out["lr"]["final"] == 0.1 / 10_000

    Args:
        max_points: The most points a trajectory keeps (>= 2).
    """

    def __init__(self, max_points: int = 200) -> None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
            raise BadInputError(f"max_points: got {max_points!r}; expected an integer >= 2")
        self.max_points = max_points
        self._rows: list[tuple[int, dict[str, float]]] = []
        self._latest: tuple[int, dict[str, float]] | None = None
        self._stride = 1
        self._calls = 0

    def record(self, step: int, values: Mapping[str, float]) -> None:
        """Notes the values of the learned knobs at ``step``."""
        row = (int(step), {name: float(v) for name, v in values.items()})
        self._latest = row
        if self._calls % self._stride == 0:
            self._rows.append(row)
            # One place stays free for the latest point, which to_dict always appends.
            if len(self._rows) > self.max_points - 1:
                self._rows = self._rows[::2]
                self._stride *= 2
        self._calls += 1

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{knob: {"final": value, "trajectory": [[step, value], ...]}}``, JSON-able."""
        if self._latest is None:
            return {}
        rows = self._rows if self._rows[-1] is self._latest else [*self._rows, self._latest]
        return {
            name: {
                "final": final,
                "trajectory": [[step, values[name]] for step, values in rows if name in values],
            }
            for name, final in self._latest[1].items()
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume recording, as plain data."""
        return {
            "max_points": self.max_points,
            "rows": [[step, dict(values)] for step, values in self._rows],
            "latest": None if self._latest is None else [self._latest[0], dict(self._latest[1])],
            "stride": self._stride,
            "calls": self._calls,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resumes from :meth:`state_dict`."""
        self.max_points = int(state["max_points"])
        self._rows = [(int(step), dict(values)) for step, values in state["rows"]]
        latest = state["latest"]
        self._latest = None if latest is None else (int(latest[0]), dict(latest[1]))
        if self._rows and self._latest is not None and self._rows[-1] == self._latest:
            self._rows[-1] = self._latest  # to_dict tells "already kept" by identity
        self._stride = int(state["stride"])
        self._calls = int(state["calls"])
