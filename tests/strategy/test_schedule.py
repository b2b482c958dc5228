"""The schedule function, its derivatives and the declared values it is built from."""

from __future__ import annotations

import math

import pytest
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule
from optuna_bigmodel.strategy import schedule_log_derivatives
from optuna_bigmodel.strategy import scheduled_lr


@pytest.mark.parametrize(
    "step, kind, expected",
    [
        (0, "cosine", 0.2 * 1 / 4.5),  # first step of the ramp: (0 + 1) / (3.5 + 1)
        (2, "cosine", 0.2 * 3 / 4.5 * (1 - 0.5 * 0.5 * (1 - math.cos(math.pi * 0.2)))),
        (5, "cosine", 0.2 * (1 - 0.5 * 0.5 * (1 - math.cos(math.pi * 0.5)))),  # ramp done
        (10, "cosine", 0.2 * 0.5),  # end of the run: half the rate gone
        (25, "cosine", 0.2 * 0.5),  # past the end it stays
        (5, "exponential", 0.2 * math.exp(-0.5 * 0.5)),
        (10, "exponential", 0.2 * math.exp(-0.5)),
    ],
)
def test_schedule_values_by_hand(step: int, kind: str, expected: float) -> None:
    assert scheduled_lr(step, 0.2, 3.5, 0.5, 10, kind) == pytest.approx(expected, rel=1e-14)


def test_no_warmup_and_no_decay_is_constant() -> None:
    assert {scheduled_lr(t, 0.3, 0.0, 0.0, 7, "cosine") for t in range(20)} == {0.3}


@pytest.mark.parametrize("kind", ["cosine", "exponential"])
@pytest.mark.parametrize("step", [0, 2, 3, 4, 9, 12])
def test_log_derivatives_by_hand_and_by_autograd(kind: str, step: int) -> None:
    warmup, decay, total = 3.5, 0.4, 10
    shape, grads = schedule_log_derivatives(step, warmup, decay, total, kind, ("warmup", "decay"))
    progress = min(step / total, 1.0)
    covered = 0.5 * (1 - math.cos(math.pi * progress))
    by_hand = {
        "warmup": -1 / (warmup + 1) if step < warmup else 0.0,
        "decay": -covered / (1 - decay * covered) if kind == "cosine" else -progress,
    }
    assert grads == pytest.approx(by_hand, rel=1e-12, abs=1e-15)
    w = torch.tensor(warmup, dtype=torch.float64, requires_grad=True)
    d = torch.tensor(decay, dtype=torch.float64, requires_grad=True)
    log_lr = torch.log(scheduled_lr(step, 1.0, w, d, total, kind))
    auto = torch.autograd.grad(log_lr, [w, d])
    assert [grads["warmup"], grads["decay"]] == pytest.approx([float(a) for a in auto], abs=1e-14)
    assert shape == pytest.approx(float(log_lr.detach().exp()), rel=1e-14)


def test_only_the_wanted_derivatives_are_returned() -> None:
    assert schedule_log_derivatives(1, 3.5, 0.4, 10, "cosine", ())[1] == {}
    assert set(schedule_log_derivatives(1, 3.5, 0.4, 10, "cosine", ("decay",))[1]) == {"decay"}


def test_a_zero_rate_has_no_derivatives() -> None:
    shape, grads = schedule_log_derivatives(10, 0.0, 1.0, 10, "cosine", ("decay",))
    assert shape == 0.0 and grads == {"decay": 0.0}


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"kind": "linear"}, "LRSchedule.kind: got 'linear'"),
        ({"total_steps": 0}, "LRSchedule.total_steps: got 0"),
        ({"lr": ()}, "LRSchedule.lr"),
    ],
)
def test_schedule_fields_are_checked(fields: dict, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        LRSchedule(**{"lr": 0.1, "total_steps": 10, **fields})


def _controller(schedule: LRSchedule, **kwargs: object) -> HypergradientController:
    model = torch.nn.Linear(2, 1)
    return HypergradientController(torch.optim.SGD(model.parameters(), lr=1.0), schedule, **kwargs)


@pytest.mark.parametrize(
    "schedule, match",
    [
        (LRSchedule(lr=LearnedValue(0.1, 0.0, 1.0), total_steps=5), "'lr', low: got 0.0"),
        (LRSchedule(lr=LearnedValue(2.0, 0.01, 1.0), total_steps=5), "init=2.0 is outside"),
        (LRSchedule(lr=LearnedValue(0.1, 1.0, 0.01), total_steps=5), "expected low < high"),
        (LRSchedule(lr=0.1, total_steps=5, decay=1.5), "'decay', value: got 1.5"),
        (LRSchedule(lr=0.1, total_steps=5, warmup=-1.0), "'warmup', value: got -1.0"),
        (LRSchedule(lr=(0.1, 0.2), total_steps=5), "got 2 values; expected one per driven"),
        (LRSchedule(lr="fast", total_steps=5), "'lr', value: got 'fast'"),
    ],
)
def test_declared_values_are_checked_naming_the_value(schedule: LRSchedule, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        _controller(schedule)


def test_a_learned_weight_decay_needs_a_positive_range() -> None:
    schedule = LRSchedule(lr=0.1, total_steps=5)
    with pytest.raises(BadInputError, match="'weight_decay', low: got 0.0"):
        _controller(schedule, weight_decay=LearnedValue(1e-3, 0.0, 1.0))
    assert _controller(schedule, weight_decay=0.0).current_values()["weight_decay"] == 0.0
