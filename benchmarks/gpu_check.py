"""The pruning callback and out-of-memory handling on a real CUDA device (run where one is lent).

1. Real trials on CUDA: the quickstart's GPT and language, a few trials with its median pruner,
   through ``run_study`` (so through ``OptunaPruning``); each trial's state, steps and value.
2. An out-of-memory trial between two normal ones, in one process and one study: the middle trial
   keeps allocating 1 GiB blocks until CUDA refuses. It must end FAIL with ``fail_reason: oom``,
   the memory it held must be given back (allocated memory after it as before it), and the next
   trial must complete with the same peak memory as the one before.

Prints each check and exits 1 if one fails; exits 1 with "no CUDA device" where there is none.

    .venv/bin/python benchmarks/gpu_check.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytorch_lightning as pl
import torch

from optuna_bigmodel import load_spec, parse_spec, register_task, run_study
from optuna_bigmodel.study import LightningObjective, open_storage
from optuna_bigmodel.study._loop import run_one_trial
from optuna_bigmodel.tasks import Task, TaskBuild, resolve_task

GIB = 1 << 30
FIXED = {  # the knobs of the out-of-memory check, fixed so the trials before and after match
    "lr": 3e-3, "optimizer": "adam", "weight_decay": 1e-4, "n_layers": 2, "d_model": 64,
    "dropout": 0.0,
}  # fmt: skip


class Hog(pl.LightningModule):
    """Holds a task's module and, in its first training step, allocates until CUDA refuses."""

    def __init__(self, inner: pl.LightningModule) -> None:
        super().__init__()
        self.inner = inner
        self.hoard: list[torch.Tensor] = []

    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        while True:
            self.hoard.append(torch.empty(GIB, dtype=torch.uint8, device=self.device))

    def configure_optimizers(self) -> Any:
        return self.inner.configure_optimizers()


def build(params: Mapping[str, Any], model: Mapping[str, Any], data: Mapping[str, Any], seed: int):
    settings = {k: v for k, v in model.items() if k != "hog"}
    built = resolve_task("markov_gpt").build(params, settings, data, seed)
    if model.get("hog"):
        return TaskBuild(Hog(built.module), built.datamodule, built.optimum)
    return built


def spec_dict(folder: Path, name: str, **trainer: Any) -> dict[str, Any]:
    data = load_spec("studies/quickstart.yaml").to_dict()
    data.update(name=name, storage=f"sqlite:///{folder / 'gpu.db'}", run_dir=str(folder))
    data["task"]["name"] = "gpu_check"
    data["trainer"].update(accelerator="cuda", devices=1, progress_bar=False, **trainer)
    return data


def real_trials(folder: Path) -> bool:
    data = spec_dict(folder, "cuda_trials", max_steps=300)
    data["budget"] = {"n_trials": 6, "timeout": None}
    data["pruner"] = {"name": "median", "kwargs": {"n_startup_trials": 2, "n_warmup_steps": 100}}
    start = time.perf_counter()
    study = run_study(parse_spec(data), progress=False)
    print(f"1. {len(study.trials)} trials on {torch.cuda.get_device_name()} in "
          f"{time.perf_counter() - start:.0f} s")
    max_steps = data["trainer"]["max_steps"]
    for trial in study.trials:
        steps = trial.user_attrs.get("pruned_at_step", max_steps)
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        print(f"   trial {trial.number}: {trial.state.name:8s} steps {steps:3d} value {value} "
              f"device {trial.user_attrs.get('device')}")
    states = {t.state for t in study.trials}
    ok = states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    ok = ok and all(t.user_attrs.get("device", "").startswith("cuda") for t in study.trials)
    print(f"   all complete or pruned, all on cuda: {ok}")
    return ok


def one_trial(study: optuna.Study, data: dict[str, Any]) -> tuple[optuna.trial.FrozenTrial, dict]:
    spec = parse_spec(data)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    frozen = run_one_trial(study, study.ask(), LightningObjective(spec, resolve_task("gpu_check")))
    memory = {
        "allocated before": before,
        "peak": torch.cuda.max_memory_allocated(),
        "allocated after": torch.cuda.memory_allocated(),
        "reserved after": torch.cuda.memory_reserved(),
    }
    return frozen, memory


def oom_between_normal_trials(folder: Path) -> bool:
    normal = spec_dict(folder, "oom_check", max_steps=100)
    axes = {name: knob["axis"] for name, knob in normal["knobs"].items()}
    normal["knobs"] = {k: {"axis": axes[k], "mode": "fixed", "value": v} for k, v in FIXED.items()}
    hog = {**normal, "task": {**normal["task"], "model": {**normal["task"]["model"], "hog": True}}}
    study = optuna.create_study(study_name="oom_check", storage=open_storage(normal["storage"]))
    warnings.filterwarnings("ignore", message="Heartbeat of storage")  # we run trials one by one
    results = [one_trial(study, d) for d in (normal, hog, normal)]
    print("2. out-of-memory trial between two normal ones (MiB):")
    for label, (trial, memory) in zip(("before", "oom", "after"), results):
        numbers = ", ".join(f"{k} {v / 2**20:,.0f}" for k, v in memory.items())
        reason = trial.user_attrs.get("fail_reason", "")
        print(f"   {label:6s} trial {trial.number}: {trial.state.name:8s} {reason:4s} {numbers}")
    (before, m_before), (oom, m_oom), (after, m_after) = results
    given_back = m_oom["allocated after"] <= m_oom["allocated before"] + 2**20
    checks = {
        "oom trial FAIL with fail_reason oom": oom.state.name == "FAIL"
        and oom.user_attrs.get("fail_reason") == "oom",
        "oom trial's memory given back": given_back,
        "the oom trial held over half the device first": m_oom["peak"] > 0.5 * _total(),
        "trials before and after complete": before.state.name == after.state.name == "COMPLETE",
        "same peak before and after (within 5%)": abs(m_after["peak"] - m_before["peak"])
        <= 0.05 * m_before["peak"],
    }
    for name, ok in checks.items():
        print(f"   {name}: {ok}")
    return all(checks.values())


def _total() -> int:
    return torch.cuda.get_device_properties(0).total_memory


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device on this machine; run it where a GPU is lent")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    register_task(Task("gpu_check", build, description="quickstart GPT, or a memory hog"))
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, "
          f"{_total() / 2**30:.0f} GiB")
    with tempfile.TemporaryDirectory() as folder:
        ok = [real_trials(Path(folder)), oom_between_normal_trials(Path(folder))]
    print("gpu_check: " + ("all checks passed" if all(ok) else "FAILED"))
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
