"""Expected size, the size budget and its multiplier, discretising to a budget, collapse guard."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.structure import CollapseGuard
from optuna_bigmodel.structure import count_weights
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import expected_fraction
from optuna_bigmodel.structure import expected_param_count
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import set_gate_mode
from optuna_bigmodel.structure import SizeBudget
from optuna_bigmodel.structure import Structure
from optuna_bigmodel.structure import structure_parameters

from tests.structure._structure_helpers import central_difference
from tests.structure._structure_helpers import gpt_hand_count
from tests.structure._structure_helpers import make_gpt
from tests.structure._structure_helpers import make_mlp


def _learned_gpt(relaxation: str = "sigmoid", seed: int = 0, all_open: bool = False):
    """A GPT learning its gates, with random logits (all positive: every unit open)."""
    gpt = make_gpt().double()
    set_gate_mode(gpt, "learn", unit_relaxation=relaxation)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for logits in structure_parameters(gpt):
            values = torch.randn(logits.shape, generator=generator, dtype=torch.float64)
            logits.copy_(values.abs() if all_open else values)
    return gpt


def test_expected_count_with_gates_off_is_the_weight_count() -> None:
    for model in (make_gpt(), make_mlp()):
        assert float(expected_param_count(model)) == count_weights(model)


def test_gpt_expected_count_is_the_hand_formula() -> None:
    gpt = _learned_gpt()
    V, T, C, D = 7, 6, 8, 4
    expected = V * C + T * C + 2 * C
    blocks = gpt.blocks_gate.keep_probs()
    for block, p in zip(gpt.blocks, blocks):
        heads = block.attn.heads_gate.keep_probs().sum()
        groups = block.mlp.channels_gate.keep_probs().sum()  # 3 groups of 4 channels
        own = 4 * C + C + C  # LayerNorms, the proj biases
        expected = expected + p * (own + heads * (4 * C * D + 3 * D) + groups * 4 * (2 * C + 1))
    torch.testing.assert_close(expected_param_count(gpt), expected, rtol=1e-12, atol=0)


def _mlp_hand_count(mask0, mask1, mask2, layer1: bool, layer2: bool) -> int:
    count, width = 0, 5
    for mask, present in ((mask0, True), (mask1, layer1), (mask2, layer2)):
        kept = 2 * sum(mask)  # groups of 2 units
        if present:
            count += kept * width + kept
            width = kept
    return count + 4 * width + 4


def test_mlp_expected_count_is_the_mean_over_every_hard_structure() -> None:
    mlp = make_mlp().double()
    set_gate_mode(mlp, "learn")
    with torch.no_grad():
        for i, logits in enumerate(structure_parameters(mlp)):
            logits.copy_(torch.linspace(-1.0, 1.2, logits.numel(), dtype=torch.float64) * (i + 1))
    p = {name: gate.keep_probs().detach() for name, gate in named_gates(mlp)}
    mean = 0.0
    masks = list(itertools.product([0, 1], repeat=3))
    for m0, m1, m2, l1, l2 in itertools.product(masks, masks, masks, [0, 1], [0, 1]):
        prob = 1.0
        for mask, name in ((m0, "units0"), (m1, "units1"), (m2, "units2")):
            keep = p[name].tolist()
            prob *= math.prod(keep[i] if k else 1 - keep[i] for i, k in enumerate(mask))
        prob *= float(p["skip1"][1 - l1]) * float(p["skip2"][1 - l2])  # candidate 0 is "layer"
        mean += prob * _mlp_hand_count(m0, m1, m2, bool(l1), bool(l2))
    assert float(expected_param_count(mlp).detach()) == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("relaxation", ["sigmoid", "hard_concrete"])
def test_budget_penalty_gradient_matches_finite_differences(relaxation: str) -> None:
    gpt = _learned_gpt(relaxation)
    budget = SizeBudget(target=0.4, init=2.5)
    total = count_weights(gpt)
    budget.penalty(expected_fraction(gpt, total), step=0).backward()
    params = list(structure_parameters(gpt))
    flat = torch.cat([p.detach().flatten() for p in params])

    def penalty(values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for p, chunk in zip(params, values.split([p.numel() for p in params])):
                p.copy_(chunk)
            return budget.lam.detach() * (expected_fraction(gpt, total) - 0.4)

    numeric = central_difference(penalty, flat)
    analytic = torch.cat([p.grad.flatten() for p in params])
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-10)
    penalty(flat)  # the logits as they were
    fraction = float(expected_fraction(gpt, total).detach())
    assert float(budget.lam.grad) == pytest.approx(fraction - 0.4, rel=1e-12)


def test_warm_up_lowers_the_target_linearly() -> None:
    budget = SizeBudget(target=0.4, warmup_steps=10)
    values = [budget.target_at(step) for step in (0, 5, 10, 50)]
    assert values == pytest.approx([1.0, 0.7, 0.4, 0.4])
    assert SizeBudget(target=0.4).target_at(0) == 0.4


def test_multiplier_rises_over_budget_and_falls_to_zero_under_it() -> None:
    budget = SizeBudget(target=0.5, lr=0.1)
    trace = []
    for fraction in [0.8] * 5 + [0.3] * 30:
        budget.penalty(torch.tensor(fraction, dtype=torch.float64), step=0).backward()
        budget.step()
        trace.append(budget.multiplier)
    rising, falling = trace[:5], trace[5:]
    assert rising == pytest.approx([0.03 * k for k in range(1, 6)])
    assert all(a >= b for a, b in zip(falling, falling[1:]))
    assert falling[-1] == 0.0 and min(trace) >= 0.0
    state = budget.state_dict()
    again = SizeBudget(target=0.5, lr=0.1)
    again.load_state_dict(state)
    assert again.multiplier == budget.multiplier


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SizeBudget(target=0.0), "SizeBudget target: got 0.0"),
        (lambda: SizeBudget(target=1.5), "a number in (0, 1]"),
        (lambda: SizeBudget(target=0.5, warmup_steps=-1), "warmup_steps: got -1"),
        (lambda: SizeBudget(target=0.5, lr=0), "lr: got 0"),
        (lambda: SizeBudget(target=0.5, init=-1.0), "init: got -1.0"),
        (lambda: discretise(make_gpt(), target=2), "discretise target: got 2"),
        (lambda: CollapseGuard(max_free_fraction=2), "max_free_fraction: got 2"),
        (lambda: set_gate_mode(make_gpt(), "fixed"), "set_gate_mode mode: got 'fixed'"),
    ],
)
def test_bad_budget_input(make, message: str) -> None:
    with pytest.raises(BadInputError) as error:
        make()
    assert message in str(error.value)


def _structure_count(gpt, structure) -> int:
    blocks = []
    for b in structure.gates["blocks_gate"]:
        heads = len(structure.gates[f"blocks.{b}.attn.heads_gate"])
        channels = 4 * len(structure.gates[f"blocks.{b}.mlp.channels_gate"])
        blocks.append((heads, 4, channels))
    return gpt_hand_count(7, 6, 8, blocks)


def test_discretise_thresholds_then_keeps_min_kept() -> None:
    gpt = _learned_gpt()
    with torch.no_grad():
        gpt.blocks[0].attn.heads_gate.logits.copy_(torch.tensor([-3.0, -1.0]))  # both shut
        gpt.blocks[0].mlp.channels_gate.logits.copy_(torch.tensor([0.5, -0.5, 0.1]))
        gpt.blocks[0].mlp.activation.logits.copy_(torch.tensor([0.0, 2.0, 1.0]))
    structure = discretise(gpt)
    assert structure.gates["blocks.0.attn.heads_gate"] == (1,)  # min_kept: the likelier one
    assert structure.gates["blocks.0.mlp.channels_gate"] == (0, 2)
    assert structure.choices["blocks.0.mlp.activation"] == "relu"
    assert structure.params_after == _structure_count(gpt, structure)


@pytest.mark.parametrize("target", [0.9, 0.7, 0.5, 0.35])
def test_discretise_trims_the_least_probable_units_to_meet_the_budget(target: float) -> None:
    gpt = _learned_gpt(seed=3, all_open=True)  # only the budget trims
    structure = discretise(gpt, target=target, fill=False)  # the fill: test_discretise_fill.py
    budget = target * structure.params_before
    assert structure.params_after == _structure_count(gpt, structure) <= budget
    probs = {name: gate.keep_probs().tolist() for name, gate in named_gates(gpt)}
    units = [(probs[g][u], g, u) for g in structure.gates for u in range(len(probs[g]))]
    kept = {(g, u) for g, us in structure.gates.items() for u in us}
    # Top-k: a trimmed unit whose gate could lose it is no likelier than any kept unit that
    # could be trimmed, and putting back the likeliest trimmed one would break the budget.
    dropped = [x for x in units if (x[1], x[2]) not in kept]
    could_drop = [x for x in units if (x[1], x[2]) in kept and len(structure.gates[x[1]]) > 1]
    assert dropped or target == 0.9
    if dropped and could_drop:
        assert max(x[0] for x in dropped) <= min(x[0] for x in could_drop)
    if dropped:
        _, gate, unit = max(dropped)
        grown = {**structure.gates, gate: tuple(sorted({*structure.gates[gate], unit}))}
        assert _structure_count(gpt, Structure(grown, structure.choices)) > budget


def test_guard_keeps_min_kept_units_open_and_records_it() -> None:
    gpt = _learned_gpt(all_open=True)
    gate = gpt.blocks[1].mlp.channels_gate
    gate.min_kept = 2
    with torch.no_grad():
        gate.logits.copy_(torch.tensor([-4.0, -2.0, -3.0]))
    guard = CollapseGuard()
    before = gate.logits.detach().clone()
    events = guard.check(gpt, step=7)
    assert torch.equal(gate.logits, before)  # check changes nothing
    seen = [(e.step, e.gate, e.kind) for e in events]
    assert seen == [(7, "blocks.1.mlp.channels_gate", "units")]
    guard.project(gpt, step=8)
    assert (gate.keep_probs() >= 0.5).tolist() == [False, True, True]
    assert guard.check(gpt, step=9) == [] and len(guard.events) == 2
    assert discretise(gpt).gates["blocks.1.mlp.channels_gate"] == (1, 2)


def test_guard_limits_choices_that_favour_skipping() -> None:
    mlp = make_mlp(widths=(6, 6, 6, 6, 6))  # skip1 .. skip4
    set_gate_mode(mlp, "learn")
    margins = {"skip1": 0.5, "skip2": 2.0, "skip3": 0.1, "skip4": 1.0}
    with torch.no_grad():
        for name, margin in margins.items():
            getattr(mlp, name).logits.copy_(torch.tensor([0.0, margin]))  # [layer, skip]
    guard = CollapseGuard(max_free_fraction=0.5)
    events = guard.project(mlp, step=3)
    assert [e.kind for e in events] == ["parameter_free"] and "4 of 4" in events[0].detail
    structure = discretise(mlp)
    # Two may skip: those that favoured it most; the closest calls were turned.
    assert {n: structure.choices[n] for n in margins} == {
        "skip1": "layer", "skip2": "skip", "skip3": "layer", "skip4": "skip"
    }
    assert guard.check(mlp, step=4) == []


def test_guard_state_round_trips() -> None:
    guard = CollapseGuard()
    gpt = _learned_gpt(all_open=True)
    with torch.no_grad():
        gpt.blocks_gate.logits.fill_(-5.0)
    guard.project(gpt, step=1)
    again = CollapseGuard()
    again.load_state_dict(guard.state_dict())
    assert again.events == guard.events and len(again.events) == 1
