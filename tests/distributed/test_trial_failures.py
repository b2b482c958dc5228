"""Failures inside a trial: CUDA out-of-memory (faked on CPU: the same exception type) and
non-finite losses end that trial with a stored reason and the study goes on; a trial whose study
is in memory cannot be copied into ddp_spawn's processes."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import pytorch_lightning as pl
from optuna.trial import TrialState

from optuna_bigmodel import BadInputError, parse_spec, run_study
from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.study import LightningObjective, TrialFailure
from tests.distributed._ranked_task import build_ranked, ranked_task
from tests.distributed._specs import ranked_spec


def _one_process_grid(
    tmp_path: Path, knob: str, choices: list, on_nonfinite: str = "prune"
) -> dict:
    spec = ranked_spec(tmp_path)
    spec["knobs"] = {knob: {"axis": "strategy", "choices": choices}}
    spec["sampler"] = {"name": "grid"}
    spec["budget"] = {}
    spec["trainer"].update(devices=1, strategy="auto", on_nonfinite=on_nonfinite)
    return spec


def test_out_of_memory_fails_that_trial_with_reason_oom_and_the_next_trial_runs(
    tmp_path: Path,
) -> None:
    spec = parse_spec(_one_process_grid(tmp_path, "oom_on_rank", [0, -1]))
    study = run_study(spec, progress=False)
    by_choice = {t.params["oom_on_rank"]: t for t in study.trials}
    assert by_choice[0].state == TrialState.FAIL
    assert by_choice[0].user_attrs["fail_reason"] == "oom"
    assert by_choice[0].user_attrs["fail_detail"].startswith("CUDA out of memory")
    assert by_choice[-1].state == TrialState.COMPLETE


@pytest.mark.parametrize("policy, state", [("prune", TrialState.PRUNED), ("fail", TrialState.FAIL)])
def test_a_non_finite_loss_ends_the_trial_as_the_study_file_says(
    tmp_path: Path, policy: str, state: TrialState
) -> None:
    spec = _one_process_grid(tmp_path, "nan_at_step", [2, 100], on_nonfinite=policy)
    study = run_study(parse_spec(spec), progress=False)
    by_choice = {t.params["nan_at_step"]: t for t in study.trials}
    assert by_choice[100].state == TrialState.COMPLETE
    broken = by_choice[2]
    assert broken.state == state
    if policy == "prune":
        assert broken.user_attrs["pruned_reason"] == "non-finite loss"
        assert broken.user_attrs["pruned_at_step"] == 3
    else:
        assert broken.user_attrs["fail_reason"] == "nonfinite"
        assert broken.user_attrs["fail_detail"] == "the training loss is not finite at step 3"


def test_out_of_memory_on_one_of_two_ranks_fails_the_trial_with_reason_oom(tmp_path: Path) -> None:
    spec = parse_spec(ranked_spec(tmp_path, oom_on_rank=1))
    trial = optuna.create_study().ask()  # only this process talks to the study: memory is fine
    with pytest.raises(TrialFailure) as info:
        LightningObjective(spec, ranked_task)(trial)
    assert info.value.reason == "oom" and "CUDA out of memory" in info.value.detail


def test_an_in_memory_study_is_refused_under_ddp_spawn(tmp_path: Path) -> None:
    built = build_ranked({}, {}, {"record_dir": str(tmp_path)}, seed=0)
    pruning = OptunaPruning(optuna.create_study().ask(), monitor="val_loss")
    trainer = pl.Trainer(
        strategy="ddp_spawn", devices=2, accelerator="cpu", max_steps=4, callbacks=[pruning],
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
    )  # fmt: skip
    with pytest.raises(BadInputError, match="study is in memory.*sqlite"):
        trainer.fit(built.module, datamodule=built.datamodule)
