"""Unit and choice gates on their own: modes, values, gradients against finite differences."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import UnitGate

from tests.structure._structure_helpers import central_difference


def test_off_returns_the_input_itself_and_has_no_parameters() -> None:
    gate = UnitGate(3, unit_size=2)
    x = torch.randn(4, 6)
    assert gate(x) is x and gate.mode == "off"
    assert list(gate.parameters()) == [] and dict(gate.state_dict()) == {}


def test_fixed_mask_zeroes_exactly_the_dropped_units_along_dim() -> None:
    gate = UnitGate(3, unit_size=[1, 2, 3]).fix([0, 2])
    x = torch.randn(2, 6, 5)
    expected = x.clone()
    expected[:, 1:3] = 0.0
    assert torch.equal(gate(x, dim=1), expected)
    assert gate.kept_units() == [0, 2] and gate.kept_entries() == [0, 3, 4, 5]
    assert list(gate.parameters()) == []


def test_sigmoid_gate_value_and_gradient_match_finite_differences() -> None:
    gate = UnitGate(3, unit_size=2).double().learn(0.7)
    torch.manual_seed(0)
    x, w = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    gate.logits.data = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    (gate(x) * w).sum().backward()

    def loss(s: torch.Tensor) -> torch.Tensor:
        return (x * torch.sigmoid(s).repeat_interleave(2) * w).sum()

    numeric = central_difference(loss, gate.logits.detach().clone())
    torch.testing.assert_close(gate.logits.grad, numeric, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(gate.keep_probs(), torch.sigmoid(gate.logits))


def test_learn_starts_every_unit_at_init_keep() -> None:
    for relaxation in ("sigmoid", "hard_concrete"):
        gate = UnitGate(4).double().learn(0.8, relaxation=relaxation)
        torch.testing.assert_close(gate.keep_probs().detach(), torch.full((4,), 0.8).double())


def test_hard_concrete_expected_l0_is_the_closed_form_and_its_gradient_is_right() -> None:
    gate = UnitGate(3, relaxation="hard_concrete").double().learn()
    log_alpha = torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64)
    gate.logits.data = log_alpha.clone()
    beta, gamma, zeta = 2 / 3, -0.1, 1.1

    def l0(a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a - beta * math.log(-gamma / zeta)).sum()

    gate.keep_probs().sum().backward()
    numeric = central_difference(l0, log_alpha)
    torch.testing.assert_close(gate.logits.grad, numeric, rtol=1e-7, atol=1e-9)
    # Monte Carlo: the share of samples that are not exactly zero.
    gate.train()
    torch.manual_seed(0)
    with torch.no_grad():
        samples = torch.stack([gate.values() for _ in range(20000)])
    torch.testing.assert_close(
        (samples != 0).double().mean(0), gate.keep_probs().detach(), atol=0.015, rtol=0
    )
    assert samples.min() == 0.0 and samples.max() == 1.0  # stretched and clamped
    assert ((samples > 0) & (samples < 1)).any()


def test_hard_concrete_sample_gradient_matches_finite_differences_for_fixed_noise() -> None:
    gate = UnitGate(3, relaxation="hard_concrete").double().learn().train()
    gate.logits.data = torch.tensor([-0.2, 0.4, 0.1], dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def loss(a: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)  # the same uniform noise on every call
        u = torch.rand(3, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + a) / (2 / 3))
        return ((s * 1.2 - 0.1).clamp(0, 1) * w).sum()

    torch.manual_seed(5)
    (gate.values() * w).sum().backward()
    numeric = central_difference(loss, gate.logits.detach().clone())
    torch.testing.assert_close(gate.logits.grad, numeric, rtol=1e-6, atol=1e-8)


def test_hard_concrete_in_eval_is_deterministic() -> None:
    gate = UnitGate(2, relaxation="hard_concrete").learn().eval()
    assert torch.equal(gate.values(), gate.values())


class Counting(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float64))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.sin(self.scale * x)


def _choice(relaxation: str = "softmax") -> ChoiceGate:
    ops = {name: Counting(s) for name, s in (("a", 0.5), ("b", 1.5), ("c", -1.0))}
    return ChoiceGate(ops, relaxation=relaxation, temperature=0.7).double()


def test_choice_off_and_fixed_compute_one_candidate() -> None:
    gate = _choice()
    x = torch.randn(5, dtype=torch.float64)
    assert torch.equal(gate(x), torch.sin(0.5 * x))  # the default: the first
    gate.fix("c")
    assert torch.equal(gate(x), torch.sin(-1.0 * x))
    assert [op.calls for op in gate.candidates.values()] == [1, 0, 1]
    assert gate.chosen() == "c" and list(gate.parameters()) == [
        op.scale for op in gate.candidates.values()
    ]  # the candidates' weights, no logits


def test_softmax_mixed_op_gradient_matches_finite_differences() -> None:
    gate = _choice().learn()
    gate.logits.data = torch.tensor([0.2, -0.5, 0.9], dtype=torch.float64)
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    outputs = torch.stack([torch.sin(s * x) for s in (0.5, 1.5, -1.0)]).detach()
    (gate(x) ** 2).sum().backward()

    def loss(logits: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(logits / 0.7, dim=0)
        return ((weights[:, None] * outputs).sum(0) ** 2).sum()

    numeric = central_difference(loss, gate.logits.detach().clone())
    torch.testing.assert_close(gate.logits.grad, numeric, rtol=1e-7, atol=1e-9)
    assert all(op.calls == 1 for op in gate.candidates.values())


def test_gumbel_single_path_computes_only_the_sampled_candidate_exactly() -> None:
    gate = _choice("gumbel").learn().train()
    gate.logits.data = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    x = torch.linspace(-1, 1, 5, dtype=torch.float64).requires_grad_()
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = gate(x)
        calls = [op.calls for op in gate.candidates.values()]
        assert sum(calls) == 1  # one candidate computed, the others never
        index = calls.index(1)
        assert torch.equal(out, gate.candidates[gate.names[index]](x))  # exactly its output
        for op in gate.candidates.values():
            op.calls = 0
        seen.add(index)
    assert seen == {0, 1, 2}


def test_gumbel_straight_through_gradient_is_the_soft_one() -> None:
    gate = _choice("gumbel").learn().train()
    gate.logits.data = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    x = torch.linspace(-1, 1, 5, dtype=torch.float64).requires_grad_()
    torch.manual_seed(3)
    (gate(x) ** 2).sum().backward()
    # The same noise through torch's own Gumbel-softmax: the soft weight of the sampled op.
    logits = gate.logits.detach().clone().requires_grad_()
    torch.manual_seed(3)
    soft = nn.functional.gumbel_softmax(logits, tau=0.7, hard=False)
    k = int(soft.argmax())
    chosen = gate.candidates[gate.names[k]]
    y = chosen(x.detach()).detach()
    upstream = 2 * y  # d loss / d output at the forward value, which is y exactly
    (upstream * soft[k] * y).sum().backward()  # the soft relaxation's chain rule
    torch.testing.assert_close(gate.logits.grad, logits.grad, rtol=1e-12, atol=1e-12)
    x_ref = x.detach().clone().requires_grad_()
    (chosen(x_ref) ** 2).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=0)  # weights see the chosen op


def test_gumbel_in_eval_takes_the_largest_logit() -> None:
    gate = _choice("gumbel").learn().eval()
    gate.logits.data = torch.tensor([0.3, 1.2, 0.1], dtype=torch.float64)
    x = torch.randn(4, dtype=torch.float64)
    assert torch.equal(gate(x), torch.sin(1.5 * x))


def test_choice_among_names_calls_only_the_thunks_it_needs() -> None:
    gate = ChoiceGate(["layer", "skip"])
    calls = []
    thunks = {"layer": lambda: calls.append("layer") or torch.ones(2),
              "skip": lambda: calls.append("skip") or torch.zeros(2)}  # fmt: skip
    assert torch.equal(gate.combine(thunks), torch.ones(2)) and calls == ["layer"]
    gate.fix("skip")
    assert torch.equal(gate.combine(thunks), torch.zeros(2))


def test_the_mode_follows_a_checkpoint() -> None:
    learned = UnitGate(3).learn(0.6)
    fresh = UnitGate(3)
    fresh.load_state_dict(learned.state_dict())
    assert fresh.mode == "learn" and torch.equal(fresh.logits, learned.logits)
    fixed = ChoiceGate(["a", "b"]).fix("b")
    fresh_choice = ChoiceGate(["a", "b"])
    fresh_choice.load_state_dict(fixed.state_dict())
    assert fresh_choice.chosen() == "b"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: UnitGate(0), "UnitGate n_units: got 0 (an integer); expected an integer >= 1"),
        (lambda: UnitGate(2, min_kept=3), "min_kept: got 3"),
        (lambda: UnitGate(2, relaxation="l0"), "relaxation: got 'l0'"),
        (lambda: UnitGate(2, unit_size=[1, 2, 3]), "unit_size: got [1, 2, 3]"),
        (lambda: UnitGate(2, owns=[[]]), "owns: got 1 lists; expected one list of modules"),
        (lambda: UnitGate(2, temperature=0), "temperature: got 0"),
        (lambda: UnitGate(3, min_kept=2).fix([1]), "kept: got [1]; expected at least min_kept = 2"),
        (lambda: UnitGate(3).fix([3]), "a unit index in [0, 2]"),
        (lambda: UnitGate(3).learn(1.0), "init_keep: got 1.0"),
        (lambda: UnitGate(3).learn().kept_units(), "learn mode"),
        (lambda: ChoiceGate([]), "candidates: got []"),
        (lambda: ChoiceGate(["a", "a"]), "distinct names"),
        (lambda: ChoiceGate(["a", "b"], default="c"), "default: got 'c'"),
        (lambda: ChoiceGate(["a", "b"]).fix("B"), "unknown candidate 'B'"),
        (lambda: ChoiceGate(["a"], relaxation="hard"), "relaxation: got 'hard'"),
        (lambda: ChoiceGate(["a"]).learn().chosen(), "learn mode"),
    ],
)
def test_bad_input_names_the_field_the_value_and_what_is_allowed(make, message: str) -> None:
    with pytest.raises(BadInputError) as error:
        make()
    assert message in str(error.value)
