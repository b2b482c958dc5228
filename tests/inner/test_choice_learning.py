"""Learned choices wait: their logits do not step during the first ``choice_delay`` of the
gate-learning steps, while unit gates do."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.inner import BilevelTuning
from optuna_bigmodel.inner import InnerPlan
from optuna_bigmodel.spec import StructureSpec
from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import UnitGate
from tests.inner._helpers import fit
from tests.inner._helpers import tiny_gpt


PLAN = InnerPlan(structure=StructureSpec(mode="learn", budget=0.5, discretise_at=0.8))


class _Logged(BilevelTuning):
    """Keeps, after every search step, the step and a copy of every choice's and unit's logits."""

    def __init__(self, choice_delay: float, choice_pick: str = "loss") -> None:
        super().__init__(PLAN, choice_delay=choice_delay, choice_pick=choice_pick)
        self.history: list[tuple[int, list[torch.Tensor], list[torch.Tensor]]] = []

    def _search_step(self, module: Any, step: int, values: bool, gates: bool) -> None:
        super()._search_step(module, step, values, gates)
        choices = [g.logits.detach().clone() for _, g in named_gates(module)
                   if isinstance(g, ChoiceGate) and g.logits is not None]  # fmt: skip
        units = [g.logits.detach().clone() for _, g in named_gates(module)
                 if isinstance(g, UnitGate) and g.logits is not None]  # fmt: skip
        self.history.append((step, choices, units))


def _run(choice_delay: float, choice_pick: str = "loss") -> _Logged:
    callback = _Logged(choice_delay, choice_pick)
    fit(tiny_gpt(), [callback], steps=30)  # discretised at step 24
    return callback


def test_choice_logits_stay_equal_before_the_delay_and_step_after_it() -> None:
    callback = _run(0.5)
    assert callback.gates.choice_start_step == 12  # half of the 24 gate-learning steps
    waiting = [entry for entry in callback.history if entry[0] < 12]
    learning = [entry for entry in callback.history if entry[0] >= 12]
    assert waiting and learning and waiting[0][1]
    first_units = waiting[0][2]
    for _, choices, _ in waiting:
        assert all(torch.equal(logits, torch.zeros_like(logits)) for logits in choices)
    # Unit gates did step meanwhile, and choices start at the delay.
    assert any(not torch.equal(a, b) for a, b in zip(first_units, waiting[-1][2]))
    assert all(not torch.equal(logits, torch.zeros_like(logits)) for logits in learning[0][1])


def test_without_a_delay_choices_step_from_the_first_search_step() -> None:
    callback = _run(0.0)
    _, choices, _ = callback.history[0]
    assert all(not torch.equal(logits, torch.zeros_like(logits)) for logits in choices)


def _choice_probs(callback: _Logged) -> dict[str, dict[str, float]]:
    gates = callback.records["structure"]["gates"]
    probs: dict[str, dict[str, float]] = {}
    for key, unit in gates.items():
        name, candidate = key[:-1].split("[")
        if name.endswith("activation"):
            probs.setdefault(name, {})[candidate] = unit["final"]
    return probs


def test_choices_picked_by_loss_measure_every_candidate_on_search_batches() -> None:
    callback = _run(0.5, "loss")
    probs = _choice_probs(callback)
    # Every candidate of every choice, on CHOICE_PICK_BATCHES search batches each.
    assert callback.records["choice_pick_batches"] == 8 * sum(len(p) for p in probs.values())
    assert callback.records["compute_steps"] == 30 + callback.search_steps


def test_choices_picked_by_logits_take_the_most_probable_candidate() -> None:
    callback = _run(0.5, "logits")
    assert callback.records["choice_pick_batches"] == 0
    chosen = callback.records["structure"]["structure"]["choices"]
    probs = _choice_probs(callback)
    assert chosen and chosen == {name: max(p, key=p.get) for name, p in probs.items()}


def test_fixed_choices_stay_fixed_while_the_other_gates_learn() -> None:
    build = tiny_gpt()
    fixed = {"net.blocks.0.mlp.activation": "silu", "net.blocks.1.mlp.activation": "gelu"}
    callback = BilevelTuning(PLAN, fixed_choices=fixed)
    fit(build, [callback], steps=30)
    structure = callback.records["structure"]["structure"]
    assert structure["choices"] == fixed
    recorded = callback.records["structure"]["gates"]
    for name, candidate in fixed.items():  # never mixed: weight exactly 1 on the fixed one
        for other in ("gelu", "relu", "silu"):
            trajectory = [p for _, p in recorded[f"{name}[{other}]"]["trajectory"]]
            assert trajectory and set(trajectory) == {1.0 if other == candidate else 0.0}
    assert structure["gates"]  # the unit gates learned and were discretised


@pytest.mark.parametrize(
    ("fixed", "message"),
    [
        ({"net.blocks.0.mlp.act": "gelu"}, "fixed_choices: got unknown learned choice"),
        ({"net.blocks.0.mlp.activation": "tanh"}, "got unknown candidate 'tanh'"),
    ],
)
def test_fixed_choices_the_model_lacks_are_refused(fixed: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        fit(tiny_gpt(), [BilevelTuning(PLAN, fixed_choices=fixed)], steps=2)


@pytest.mark.parametrize("value", [1.0, -0.1, True, "0.5"])
def test_a_bad_choice_delay_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(BadInputError, match=r"choice_delay: got .*expected a number in \[0, 1\)"):
        BilevelTuning(PLAN, choice_delay=value)


def test_a_bad_choice_pick_is_refused_naming_the_field() -> None:
    expected = "choice_pick: got 'best'.*expected one of 'loss', 'logits'"
    with pytest.raises(BadInputError, match=expected):
        BilevelTuning(PLAN, choice_pick="best")
