"""Records of learned knobs: final values and subsampled trajectories."""

from __future__ import annotations

import json

import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy import TrajectoryRecorder


def _run(recorder: TrajectoryRecorder, steps: range) -> None:
    for step in steps:
        recorder.record(step, {"lr": step * 1e-3, "warmup": 100.0 - step * 1e-3})


@pytest.mark.parametrize("steps", [1, 150, 199, 200, 201, 1000, 12_345])
def test_trajectories_are_subsampled_evenly_with_first_and_last(steps: int) -> None:
    recorder = TrajectoryRecorder(max_points=200)
    _run(recorder, range(steps))
    out = recorder.to_dict()
    assert set(out) == {"lr", "warmup"}
    trajectory = out["lr"]["trajectory"]
    assert len(trajectory) == min(steps, len(trajectory)) <= 200
    assert len(trajectory) >= min(steps, 100)  # never thinned below half
    assert trajectory[0] == [0, 0.0] and trajectory[-1][0] == steps - 1
    assert out["lr"]["final"] == (steps - 1) * 1e-3 == trajectory[-1][1]
    gaps = {b[0] - a[0] for a, b in zip(trajectory[:-2], trajectory[1:-1])}
    assert len(gaps) <= 1  # evenly spaced but for the latest point
    assert json.loads(json.dumps(out)) == out


def test_the_exact_format() -> None:
    recorder = TrajectoryRecorder(max_points=3)
    for step, value in enumerate([0.1, 0.2, 0.3, 0.4, 0.5]):
        recorder.record(step * 10, {"lr": value})
    # Kept 0, 10, 20 -> thinned to 0, 20 -> kept 40 -> thinned to 0, 40.
    assert recorder.to_dict() == {"lr": {"final": 0.5, "trajectory": [[0, 0.1], [40, 0.5]]}}
    assert TrajectoryRecorder().to_dict() == {}


def test_state_dict_resumes_as_if_never_stopped() -> None:
    whole, first = TrajectoryRecorder(50), TrajectoryRecorder(50)
    _run(whole, range(777))
    _run(first, range(300))
    second = TrajectoryRecorder(2)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    _run(second, range(300, 777))
    assert second.to_dict() == whole.to_dict()


def test_max_points_is_checked() -> None:
    with pytest.raises(BadInputError, match="max_points: got 1; expected an integer >= 2"):
        TrajectoryRecorder(max_points=1)
