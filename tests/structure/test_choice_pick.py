"""Choices picked by the loss the model has with each candidate alone; discretise takes them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import pick_choices_by_loss
from optuna_bigmodel.structure import set_gate_mode


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


class _Chain(nn.Module):
    """Two choices of a factor in a row; the loss wants the product 6."""

    def __init__(self) -> None:
        super().__init__()
        self.first = ChoiceGate({"one": _Scale(1.0), "two": _Scale(2.0), "three": _Scale(3.0)})
        self.second = ChoiceGate({"one": _Scale(1.0), "two": _Scale(2.0), "three": _Scale(3.0)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


X = torch.ones(4)


def _learned(first: list[float], second: list[float]) -> _Chain:
    model = _Chain().train()
    set_gate_mode(model, "learn")
    with torch.no_grad():
        model.first.logits.copy_(torch.tensor(first))
        model.second.logits.copy_(torch.tensor(second))
    return model


def _loss(model: _Chain):
    return lambda: float(((model(X) - 6.0) ** 2).mean())


def test_each_choice_takes_the_candidate_with_the_lowest_loss_not_the_largest_logit() -> None:
    # The logits favour "one" twice. The first choice is measured with the second mixing as
    # learned (a factor of about 1.14), so "three" comes closest to 6; the second is measured with
    # the first fixed to "three", so "two" gives exactly 6.
    model = _learned([3.0, 0.0, 0.0], [3.0, 0.0, 0.0])
    before = [model.first.logits.detach().clone(), model.second.logits.detach().clone()]
    picked = pick_choices_by_loss(model, _loss(model))
    assert picked == {"first": "three", "second": "two"}
    assert torch.equal(model.first.logits, before[0])
    assert torch.equal(model.second.logits, before[1])
    assert model.training
    structure = discretise(model, choices=picked)
    assert dict(structure.choices) == picked
    assert dict(discretise(model).choices) == {"first": "one", "second": "one"}


def test_a_candidate_frozen_shut_is_never_picked_and_ties_go_to_the_larger_logit() -> None:
    model = _learned([0.5, -1.0e4, 0.0], [0.0, -1.0e4, -1.0e4])  # second: only "one"
    # The loss wants the product 2.2: "two" is best but shut; "three" (0.64) beats "one" (1.44).
    loss = lambda: float(((model(X) - 2.2) ** 2).mean())  # noqa: E731
    assert pick_choices_by_loss(model, loss) == {"first": "three", "second": "one"}
    tie = _learned([0.0, -1.0e4, 0.5], [0.0, 0.0, 0.0])
    always_one = lambda: 1.0  # noqa: E731
    assert pick_choices_by_loss(tie, always_one) == {"first": "three", "second": "one"}


def test_the_logits_are_restored_when_the_loss_fails() -> None:
    model = _learned([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])

    def failing() -> float:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        pick_choices_by_loss(model, failing)
    assert torch.equal(model.first.logits.detach(), torch.tensor([1.0, 2.0, 3.0]))
    assert model.training


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"third": "one"}, "discretise choices: got unknown learned choice 'third'"),
        ({"first": "four"}, "discretise choices['first']: got unknown candidate 'four'"),
    ],
)
def test_discretise_refuses_choices_it_cannot_take(choices: dict, message: str) -> None:
    with pytest.raises(BadInputError) as error:
        discretise(_learned([0.0] * 3, [0.0] * 3), choices=choices)
    assert message in str(error.value)
