"""The bilevel inner loop on two CPU rank processes (gloo): a trial with a learned rate and
learned gates completes, and rank 0 records what was learned."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState
import pytest

from optuna_bigmodel import run_study
from optuna_bigmodel.spec import parse_spec


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_learned_rate_and_gates_train_on_two_ranks(tmp_path: Path, strategy: str) -> None:
    spec = {
        "name": "bilevel_ddp",
        "task": {
            "name": "markov_gpt",
            "model": {"d_model": 16, "n_layers": 2, "n_heads": 2, "d_ff": 32},
            "data": {"vocab_size": 8, "seq_len": 8, "n_train": 256, "n_val": 64},
        },
        "knobs": {"lr": {"axis": "strategy", "mode": "learn", "low": 1e-4, "high": 0.1}},
        "inner": {"descent": "dynamic"},
        "structure": {"mode": "learn", "budget": 0.5},
        "sampler": {"name": "random"},
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "run_dir": str(tmp_path / "runs"),
        "trainer": {"max_steps": 8, "val_check_interval": 4, "accelerator": "cpu", "devices": 2,
                    "strategy": strategy, "progress_bar": False},
        "budget": {"n_trials": 1},
    }  # fmt: skip
    (trial,) = run_study(parse_spec(spec), progress=False).trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    assert trial.user_attrs["n_devices"] == 2
    assert 1e-4 <= trial.user_attrs["learned"]["lr"]["final"] <= 0.1
    structure = trial.user_attrs["structure"]
    assert structure["params_after"] <= 0.5 * structure["params_before"]
