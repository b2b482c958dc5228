"""The controller on real optimisers: clipping, restores, groups, state, what it leaves alone."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule


def _regression(seed: int = 0, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def _setup(optimizer: str = "sgd", **kwargs: object):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=1.0),
        "momentum": lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p),
        "adamw": lambda p: torch.optim.AdamW(p),
    }[optimizer]
    opt = make(model.parameters())
    kwargs.setdefault("schedule", LRSchedule(lr=LearnedValue(1e-3, 1e-5, 1.0), total_steps=100))
    controller = HypergradientController(opt, kwargs.pop("schedule"), **kwargs)
    return model, opt, controller


def _loss(model: torch.nn.Module, seed: int) -> torch.Tensor:
    x, y = _regression(seed)
    return F.mse_loss(model(x), y)


def _train(model, opt, controller, steps: int, start: int = 0, search: bool = True) -> None:
    for step in range(start, start + steps):
        controller.before_train_step(step)
        opt.zero_grad()
        loss = _loss(model, step)
        loss.backward()
        opt.step()
        controller.after_train_step(loss)
        if search:
            controller.on_search_batch(_loss(model, 10_000 + step))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_a_too_small_learning_rate_grows_on_every_optimizer(optimizer: str) -> None:
    model, opt, controller = _setup(optimizer, meta_lr=0.05)
    _train(model, opt, controller, 60)
    record = controller.record()
    # From 1e-3, rising ~5% per search batch (with momentum it then settles back lower).
    assert max(value for _, value in record["lr"]["trajectory"]) > 4e-3
    assert record["lr"]["trajectory"][0] == [0, pytest.approx(1e-3)]
    assert opt.param_groups[0]["lr"] == pytest.approx(record["lr"]["final"], rel=0.06)


def test_learned_values_are_clipped_to_their_range() -> None:
    schedule = LRSchedule(
        lr=LearnedValue(1e-3, 1e-4, 2e-3), total_steps=20, decay=LearnedValue(0.5, 0.2, 0.8),
        warmup=LearnedValue(2.5, 1.0, 3.0),
    )
    model, opt, controller = _setup(schedule=schedule, meta_optimizer="sgd", meta_lr=1e9)
    _train(model, opt, controller, 6)
    values = controller.current_values()
    assert values["lr"] in (pytest.approx(1e-4), pytest.approx(2e-3))
    assert values["decay"] in (0.2, 0.8) and values["warmup"] in (1.0, 3.0)


@pytest.mark.parametrize("meta_optimizer", ["adam", "sgd"])
def test_meta_steps_are_taken_in_units_of_each_values_range(meta_optimizer: str) -> None:
    # A warm-up in [0, 200] steps moves as if it were warmup / 200; a log-scale rate moves as is.
    schedule = LRSchedule(
        lr=LearnedValue(1e-3, 1e-5, 1.0), total_steps=400, warmup=LearnedValue(100.0, 0.0, 200.0)
    )
    model, opt, controller = _setup(schedule=schedule, meta_optimizer=meta_optimizer, meta_lr=0.01)
    _train(model, opt, controller, 1, search=False)
    hyper = controller.on_search_batch(_loss(model, 10_000))
    values = controller.current_values()
    if meta_optimizer == "adam":  # Adam's first step is -meta_lr * sign, in normalised units
        expected_warmup = 100.0 - 0.01 * 200.0 * math.copysign(1.0, hyper["warmup"])
        expected_lr = 1e-3 * math.exp(-0.01 * math.copysign(1.0, hyper["lr"]))
    else:  # gradient descent on u = warmup / 200: dJ/du = 200 dJ/dwarmup, move 200 * du
        expected_warmup = 100.0 - 0.01 * 200.0**2 * hyper["warmup"]
        expected_lr = 1e-3 * math.exp(-0.01 * hyper["lr"])
    assert hyper["warmup"] != 0.0
    assert values["warmup"] == pytest.approx(expected_warmup, rel=1e-9)
    assert values["lr"] == pytest.approx(expected_lr, rel=1e-9)


def test_search_batches_leave_the_weights_and_their_gradients_alone() -> None:
    model, opt, controller = _setup()
    _train(model, opt, controller, 3, search=False)
    before = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    controller.on_search_batch(_loss(model, 123))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))


def _state(model, opt, controller) -> dict:
    return copy.deepcopy({
        "weights": model.state_dict(), "optimizer": opt.state_dict()["state"],
        "values": controller.current_values(), "tangents": controller.tangent("lr"),
    })


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["values"] == b["values"]
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    for key, state in a["optimizer"].items():
        assert all(torch.equal(v, b["optimizer"][key][k]) for k, v in state.items())
    assert all(torch.equal(x, y) for x, y in zip(a["tangents"], b["tangents"]))


def test_a_non_finite_train_loss_restores_the_last_good_state_and_halves_the_meta_rate() -> None:
    model, opt, controller = _setup("adam", meta_lr=0.04)
    _train(model, opt, controller, 4)
    good = _state(model, opt, controller)
    controller.before_train_step(4)
    opt.zero_grad()
    (_loss(model, 4) * math.nan).backward()
    opt.step()
    controller.after_train_step(torch.tensor(math.nan))
    _assert_same_state(good, _state(model, opt, controller))
    assert controller.meta_lr == 0.02
    assert controller.events == [
        {"step": 4, "event": "restored", "reason": "non-finite train loss nan", "meta_lr": 0.02}
    ]
    _train(model, opt, controller, 3, start=5)  # and the run goes on
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_non_finite_search_loss_restores_too() -> None:
    model, opt, controller = _setup("momentum", snapshot_every=2)
    _train(model, opt, controller, 4)  # 4 search batches: the last good state is after the 4th
    good = _state(model, opt, controller)
    _train(model, opt, controller, 1, start=4, search=False)
    controller.on_search_batch(_loss(model, 99) * math.inf)
    _assert_same_state(good, _state(model, opt, controller))
    assert controller.meta_lr == 0.01 and "non-finite search loss" in controller.events[0]["reason"]


def test_an_lr_changed_outside_the_controller_is_an_error() -> None:
    model, opt, controller = _setup()
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _train(model, opt, controller, 1)
    scheduler.step()
    with pytest.raises(BadInputError, match="parameter group 0: lr changed from"):
        controller.before_train_step(1)


def test_per_group_rates_and_decays_keep_to_their_groups() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[2].parameters()}], lr=1.0
    )
    schedule = LRSchedule(
        lr=(LearnedValue(1e-2, 1e-4, 1.0), LearnedValue(1e-3, 1e-4, 1.0)), total_steps=10
    )
    wd = [LearnedValue(1e-3, 1e-6, 1.0), 0.0]
    controller = HypergradientController(opt, schedule, weight_decay=wd, meta_lr=0.0)
    _train(model, opt, controller, 3)
    assert controller.learned_names == ["lr/0", "lr/1", "weight_decay/0"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 1e-3])
    first, second = controller.tangent("lr/1")[:2], controller.tangent("lr/1")[2:]
    assert all(not t.any() for t in first) and all(t.any() for t in second)
    assert "weight_decay/1" in controller.current_values()
    assert set(controller.record()) == {"lr/0", "lr/1", "weight_decay/0"}


def test_only_the_driven_groups_are_touched() -> None:
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    groups = [{"params": a.parameters(), "lr": 0.3}, {"params": b.parameters()}]
    opt = torch.optim.SGD(groups, lr=0.1)
    controller = HypergradientController(opt, LRSchedule(lr=0.05, total_steps=5), groups=[1])
    controller.before_train_step(0)
    assert [g["lr"] for g in opt.param_groups] == [0.3, pytest.approx(0.05)]
    with pytest.raises(BadInputError, match="groups: got \\[2\\]"):
        HypergradientController(opt, LRSchedule(lr=0.05, total_steps=5), groups=[2])


def test_the_learned_decay_is_adamw_decay() -> None:
    # Adam plus the controller's decoupled decay takes the same step as torch's AdamW.
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    theirs.load_state_dict(ours.state_dict())
    adam = torch.optim.Adam(ours.parameters(), weight_decay=0.3)  # replaced by the controller's
    adamw = torch.optim.AdamW(theirs.parameters(), lr=0.01, weight_decay=0.05)
    schedule = LRSchedule(lr=LearnedValue(0.01, 1e-3, 1.0), total_steps=5)
    controller = HypergradientController(adam, schedule, weight_decay=LearnedValue(0.05, 1e-3, 1.0))
    for step in range(3):
        controller.before_train_step(step)
        for model, opt in ((ours, adam), (theirs, adamw)):
            opt.zero_grad()
            _loss(model, step).backward()
            opt.step()
        controller.after_train_step()
    assert adam.param_groups[0]["weight_decay"] == 0.0
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_state_dict_resumes_the_same_controller() -> None:
    model, opt, controller = _setup("adam", meta_lr=0.05)
    _train(model, opt, controller, 5)
    state = copy.deepcopy(controller.state_dict())
    resumed = HypergradientController(
        opt, LRSchedule(lr=LearnedValue(1e-3, 1e-5, 1.0), total_steps=100), meta_lr=0.05
    )
    resumed.load_state_dict(state)
    assert resumed.current_values() == controller.current_values()
    assert resumed.record() == controller.record()
    assert resumed.hypergradient(_loss(model, 7)) == controller.hypergradient(_loss(model, 7))
    assert resumed.meta.state_dict() == controller.meta.state_dict()


def test_hooks_out_of_order_and_bad_arguments() -> None:
    model, opt, controller = _setup()
    with pytest.raises(RuntimeError, match="before_train_step"):
        controller.after_train_step()
    for kwargs, match in (({"mu": 1.5}, "mu: got 1.5"), ({"meta_lr": -1.0}, "meta_lr: got -1.0"),
                          ({"meta_optimizer": "lion"}, "meta_optimizer: got 'lion'"),
                          ({"snapshot_every": 0}, "snapshot_every: got 0")):
        with pytest.raises(BadInputError, match=match):
            _setup(**kwargs)
    with pytest.raises(BadInputError, match="optimizer: got Linear"):
        HypergradientController(model[0], LRSchedule(lr=0.1, total_steps=3))


def test_every_decision_goes_through_the_reduce_function() -> None:
    # Under DDP `reduce` averages over ranks; here it doubles, to show what passes through it.
    seen: list[int] = []

    def reduce(values: torch.Tensor) -> torch.Tensor:
        seen.append(values.numel())
        return values * 2

    model, opt, controller = _setup(reduce=reduce, meta_lr=0.0)
    _train(model, opt, controller, 1, search=False)
    assert seen == [1]  # the train loss
    search = controller.on_search_batch(_loss(model, 5))
    assert seen == [1, 2]  # the search loss and the one hypergradient, in one transfer
    plain_model, plain_opt, plain = _setup(meta_lr=0.0)
    _train(plain_model, plain_opt, plain, 1, search=False)
    assert search["lr"] == pytest.approx(2 * plain.hypergradient(_loss(plain_model, 5))["lr"])
