"""The bilevel inner loop in real Lightning runs: who steps on which batches, what is learned,
recorded and exported, and the clear errors when a module or datamodule cannot take part."""

from __future__ import annotations

import math
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.inner import BilevelTuning
from optuna_bigmodel.inner import InnerPlan
from optuna_bigmodel.spec import InnerSpec
from optuna_bigmodel.spec import StructureSpec
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.structure import count_weights
from optuna_bigmodel.structure import export_model
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import structure_parameters
from optuna_bigmodel.structure import weight_parameters
from tests.inner._helpers import fit
from tests.inner._helpers import tiny_gpt


LEARN_ALL = InnerPlan(
    descent="dynamic",
    lr=LearnedValue(1e-3, 1e-4, 1.0),
    structure=StructureSpec(mode="learn", budget=0.5, discretise_at=0.8),
)


class _Watched(BilevelTuning):
    """Checks, at every step, that search batches move no weight and training batches no gate."""

    def __init__(self, plan: InnerPlan) -> None:
        super().__init__(plan)
        self.checked_steps = 0
        self.gates_moved = self.weights_moved = 0

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, i: int) -> None:
        super().on_train_batch_start(trainer, module, batch, i)
        self._gates = _copies(structure_parameters(module))
        self._weights = _copies(weight_parameters(module))

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, out: Any, b: Any, i: int) -> None:
        # Between the two hooks Lightning stepped the weights on a training batch.
        assert _same(self._gates, structure_parameters(module)), "a gate moved on a training batch"
        self.weights_moved += not _same(self._weights, weight_parameters(module))
        super().on_train_batch_end(trainer, module, out, b, i)

    def _search_step(self, module: Any, step: int, values: bool, gates: bool) -> None:
        weights = _copies(weight_parameters(module))
        logits = _copies(structure_parameters(module))
        super()._search_step(module, step, values, gates)
        assert _same(weights, weight_parameters(module)), "a weight moved on a search batch"
        self.gates_moved += gates and not _same(logits, structure_parameters(module))
        self.checked_steps += 1


def _copies(params: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _same(before: list[torch.Tensor], params: Any) -> bool:
    after = list(params)
    return len(before) == len(after) and all(torch.equal(a, b) for a, b in zip(before, after))


def test_weights_never_step_on_search_batches_nor_gates_on_training_batches() -> None:
    watched = _Watched(LEARN_ALL)
    fit(tiny_gpt(), [watched], steps=20)
    assert watched.checked_steps == 20
    assert watched.weights_moved == 20  # the weights did train, on training batches
    assert watched.gates_moved == 16  # gates learned on search batches until discretised at 16


def test_a_learned_rate_climbs_from_a_too_small_start_and_is_recorded() -> None:
    plan = InnerPlan(lr=LearnedValue(1e-4, 1e-5, 1.0), inner=InnerSpec(meta_lr=0.1))
    callback = BilevelTuning(plan, max_record_points=16)
    fit(tiny_gpt(), [callback], steps=40)
    record = callback.records["learned"]["lr"]
    # Plain SGD at 1e-4 barely moves; the hypergradient says so (Adam meta-steps: <= 0.1 / step).
    assert record["final"] > 1e-3
    assert 2 <= len(record["trajectory"]) <= 16
    assert record["trajectory"][-1][1] == pytest.approx(record["final"], rel=0.2)
    assert callback.records["compute_steps"] == 80  # 40 training + 40 search batches


def test_a_learned_structure_meets_its_budget_and_exports_to_a_smaller_equal_model() -> None:
    build = tiny_gpt()
    callback = BilevelTuning(LEARN_ALL)
    fit(build, [callback], steps=30)
    record = callback.records["structure"]
    assert record["params_after"] <= 0.5 * record["params_before"]
    assert record["params_before"] == count_weights(build.module.net)
    assert record["discretised_at_step"] == 24
    assert all(gate.mode == "fixed" for _, gate in named_gates(build.module))
    net = build.module.net.eval()
    small = export_model(net)
    assert count_weights(small) == record["params_after"]
    x = torch.randint(0, 8, (4, 8), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(small(x), net(x), rtol=1e-5, atol=1e-6)
    trajectories = [g["trajectory"] for g in record["gates"].values()]
    assert trajectories and all(1 <= len(t) <= 200 for t in trajectories)


def test_dynamic_descent_follows_the_warmup_and_cosine_decay_of_the_closed_form() -> None:
    seen: list[float] = []

    class _Rates(pl.Callback):
        def on_before_optimizer_step(self, trainer: Any, module: Any, optimizer: Any) -> None:
            seen.append(optimizer.param_groups[0]["lr"])

    plan = InnerPlan(descent="dynamic", lr=0.2, warmup=4.0, decay=0.5)
    callback = BilevelTuning(plan)
    fit(tiny_gpt(), [callback, _Rates()], steps=20)
    expected = [
        0.2 * min(1.0, (t + 1) / 5) * (1 - 0.5 * (1 - math.cos(math.pi * t / 20)) / 2)
        for t in range(20)
    ]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert "learned" not in callback.records  # nothing was learned, so no search batches
    assert callback.search_steps == 0


def test_gd_descent_takes_one_step_on_the_gradient_of_the_whole_training_split() -> None:
    build = tiny_gpt(lr=0.5)
    net = build.module.net
    start = _copies(weight_parameters(net))
    build.datamodule.setup()
    x, y = build.datamodule._dataset("train").tensors
    logits = net(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = torch.autograd.grad(loss, list(weight_parameters(net)))
    expected = [w - 0.5 * g for w, g in zip(start, grads)]
    trainer = fit(build, [BilevelTuning(InnerPlan(descent="gd"))], steps=1)
    assert trainer.num_training_batches == 1
    for got, want in zip(weight_parameters(net), expected):
        torch.testing.assert_close(got.detach(), want, rtol=1e-4, atol=1e-6)


def test_the_search_split_is_disjoint_from_training_and_fixed_by_the_data_seed() -> None:
    splits = []
    for trial_seed in (0, 1):
        datamodule = tiny_gpt(seed=trial_seed).datamodule
        datamodule.configure_inner_loop(search_fraction=0.25)
        train, search = datamodule._split()
        splits.append((set(train.indices), set(search.indices)))
        assert len(search) == 64 and not set(train.indices) & set(search.indices)
        assert len(train) + len(search) == 256
    assert splits[0] == splits[1]


class _Plain(pl.LightningModule):
    def __init__(self, gated_optimizer: bool = False) -> None:
        super().__init__()
        self.net = tiny_gpt().module.net
        self.gated_optimizer = gated_optimizer

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x).reshape(-1, 8), y.reshape(-1))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.parameters() if self.gated_optimizer else weight_parameters(self)
        return torch.optim.SGD(params, lr=0.1)


class _WithSearchLoss(_Plain):
    def search_loss(self, batch: Any) -> torch.Tensor:
        return self.training_step(batch, 0)


def _loader() -> DataLoader:
    x = torch.randint(0, 8, (32, 8))
    return DataLoader(TensorDataset(x, x), batch_size=8)


def _fit_plain(module: pl.LightningModule, datamodule: pl.LightningDataModule | None) -> None:
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[BilevelTuning(LEARN_ALL)])  # fmt: skip
    if datamodule is None:
        trainer.fit(module, train_dataloaders=_loader())
    else:
        trainer.fit(module, datamodule=datamodule)


def test_a_module_without_search_loss_is_told_what_it_lacks() -> None:
    with pytest.raises(BadInputError, match=r"_Plain.search_loss\(batch\)"):
        _fit_plain(_Plain(), tiny_gpt().datamodule)


def test_gate_logits_in_the_weights_optimiser_are_refused() -> None:
    with pytest.raises(BadInputError, match="puts gate logits in SGD.*weight_parameters"):
        _fit_plain(_WithSearchLoss(gated_optimizer=True), tiny_gpt().datamodule)


def test_data_without_a_search_split_is_refused() -> None:
    with pytest.raises(BadInputError, match="search_dataloader"):
        _fit_plain(_WithSearchLoss(), None)


@pytest.mark.parametrize("stop_at, discretised", [(10, False), (18, True)])
def test_a_run_resumed_from_its_checkpoint_continues_what_it_learned(
    tmp_path: Any, stop_at: int, discretised: bool
) -> None:
    plan = InnerPlan(
        descent="dynamic",
        lr=LearnedValue(1e-3, 1e-4, 1.0),
        structure=StructureSpec(mode="learn", budget=0.5, discretise_at=0.7),
    )
    # The first run stops at `stop_at` of a 24-step run, like a worker killed there.
    class _Kill(pl.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            trainer.should_stop = trainer.global_step >= stop_at

    first = BilevelTuning(plan)
    trainer = _trainer(max_steps=24, callbacks=[first, _Kill()])
    trainer.fit(tiny_gpt().module, datamodule=tiny_gpt().datamodule)
    path = str(tmp_path / "last.ckpt")
    trainer.save_checkpoint(path)
    lr_then = first.controller.current_values()["lr"]
    resumed = BilevelTuning(plan)
    build = tiny_gpt()
    seen: dict[str, Any] = {}

    class _AtStart(pl.Callback):
        def on_train_start(self, trainer: Any, module: Any) -> None:
            seen["lr"] = resumed.controller.current_values()["lr"]
            seen["fixed"] = all(g.mode == "fixed" for _, g in named_gates(module))

    trainer = _trainer(max_steps=24, callbacks=[resumed, _AtStart()])
    trainer.fit(build.module, datamodule=build.datamodule, ckpt_path=path)
    assert seen["lr"] == pytest.approx(lr_then)  # not back at its init
    assert seen["fixed"] is discretised
    steps = [step for step, _ in resumed.records["learned"]["lr"]["trajectory"]]
    assert steps == list(range(24))  # the trajectory before the stop is kept
    assert resumed.records["compute_steps"] == 24 + 24  # the rate learns on every step
    assert resumed.records["structure"]["params_after"] <= 0.5 * count_weights(build.module.net)


def _trainer(**kwargs: Any) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, limit_val_batches=0, **kwargs)  # fmt: skip


def test_a_warmup_knob_makes_the_rate_follow_its_schedule_under_any_descent() -> None:
    seen: list[float] = []

    class _Rates(pl.Callback):
        def on_before_optimizer_step(self, trainer: Any, module: Any, optimizer: Any) -> None:
            seen.append(optimizer.param_groups[0]["lr"])

    plan = InnerPlan(descent="sgd", warmup=3.0)
    assert plan.drives_rate and not plan.is_plain
    fit(tiny_gpt(lr=0.1), [BilevelTuning(plan), _Rates()], steps=6)
    assert seen == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rel=1e-12)
