"""Study files of the ranked test task, shared by the distributed tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RANKED = "tests.distributed._ranked_task:ranked_task"
# ThresholdPruner prunes a value above `upper`; every val_loss is >= 0.
ALWAYS = {"name": "threshold", "kwargs": {"upper": -1.0}}
NEVER = {"name": "none"}


def ranked_spec(
    tmp_path: Path, *, strategy: str = "ddp", pruner: Any = NEVER, **model: Any
) -> dict:
    """One trial of the ranked test task on two CPU processes, stored in an SQLite file."""
    return {
        "name": "ranked",
        "task": {"name": RANKED, "model": model, "data": {"record_dir": str(tmp_path)}},
        "knobs": {
            "lr": {"axis": "strategy", "low": 0.01, "high": 0.5, "log": True},
            "width": {"axis": "structure", "choices": [0, 4]},
        },
        "sampler": {"name": "random"},
        "pruner": pruner,
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "run_dir": str(tmp_path / "runs"),
        "trainer": {
            "max_steps": 8, "val_check_interval": 4, "accelerator": "cpu", "devices": 2,
            "strategy": strategy, "progress_bar": False,
        },
        "budget": {"n_trials": 1},
    }  # fmt: skip
