"""A test task whose validation metric differs by rank on purpose, and which writes down, per
rank, the parameters it was built with and every value it logged.

Model settings (or knobs): `missing_on_rank` (that rank logs no `val_loss`), `nan_at_step` (the
training loss becomes NaN from that step on), `oom_on_rank` (that rank raises CUDA's out-of-memory
error in its first training step). Data setting: `record_dir`, where `rank<r>.jsonl` is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from optuna_bigmodel.tasks import Task, TaskBuild
from optuna_bigmodel.testing._tiny_task import TinyData, TinyRegression


class RankedRegression(TinyRegression):
    """TinyRegression whose rank r logs `val_loss + r`: the ranks disagree, their mean is known."""

    def __init__(
        self, settings: Mapping[str, Any], params: Mapping[str, Any], record_dir: str
    ) -> None:
        super().__init__(
            lr=float(settings.get("lr", 0.1)), offset=float(settings.get("offset", 0.0)),
            width=int(settings.get("width", 0)), fail=False,
        )  # fmt: skip
        self.params = dict(params)
        self.record_dir = record_dir
        self.missing_on_rank = int(settings.get("missing_on_rank", -1))
        self.nan_at_step = settings.get("nan_at_step")
        self.oom_on_rank = int(settings.get("oom_on_rank", -1))

    def on_fit_start(self) -> None:
        self._record({"params": self.params, "pid": os.getpid()})

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        if self.global_rank == self.oom_on_rank:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB (test)")
        loss = super().training_step(batch, index)
        if self.nan_at_step is not None and self.global_step >= int(self.nan_at_step):
            return loss * float("nan")
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        # One validation batch per rank, so the epoch value each rank logs is this batch's value.
        x, y = batch
        value = nn.functional.mse_loss(self.net(x), y) + self.offset + self.global_rank
        if self.global_rank != self.missing_on_rank:
            self.log("val_loss", value, on_step=False, on_epoch=True)  # no sync_dist, on purpose
        if not self.trainer.sanity_checking:
            self._record({"step": self.trainer.global_step, "value": float(value)})

    def _record(self, entry: dict[str, Any]) -> None:
        path = os.path.join(self.record_dir, f"rank{self.global_rank}.jsonl")
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")


def build_ranked(
    params: Mapping[str, Any], model: Mapping[str, Any], data: Mapping[str, Any], seed: int
) -> TaskBuild:
    torch.manual_seed(seed)
    module = RankedRegression({**model, **params}, params, str(data["record_dir"]))
    return TaskBuild(module=module, datamodule=TinyData(seed))


ranked_task = Task(name="ranked", build=build_ranked, description="per-rank metrics, for tests")


def read_records(record_dir: str, rank: int) -> list[dict[str, Any]]:
    path = os.path.join(record_dir, f"rank{rank}.jsonl")
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file]
