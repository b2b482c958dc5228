"""``discretise`` fills its budget: trimmed and shut units come back, most probable first, while
they fit; checked against brute force on a small GPT."""

from __future__ import annotations

import itertools

import pytest
import torch

from optuna_bigmodel.structure import count_weights
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import set_gate_mode
from optuna_bigmodel.structure import structure_parameters
from optuna_bigmodel.structure import UnitGate
from tests.structure._structure_helpers import gpt_hand_count
from tests.structure._structure_helpers import make_gpt


def _learned_gpt(seed: int):
    """A GPT learning its gates, with random logits (some units open, some shut)."""
    gpt = make_gpt().double()
    set_gate_mode(gpt, "learn")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for logits in structure_parameters(gpt):
            logits.copy_(2 * torch.randn(logits.shape, generator=generator, dtype=torch.float64))
    return gpt


def _one_block_gpt(heads: list[float], channels: list[float]):
    """A 1-block GPT learning its gates, its block kept, with these head and channel logits."""
    gpt = make_gpt(n_layers=1).double()
    set_gate_mode(gpt, "learn")
    with torch.no_grad():
        gpt.blocks_gate.logits.fill_(3.0)
        gpt.blocks[0].attn.heads_gate.logits.copy_(torch.tensor(heads))
        gpt.blocks[0].mlp.channels_gate.logits.copy_(torch.tensor(channels))
    return gpt


def _count(gates: dict[str, tuple[int, ...]]) -> int:
    """The weights of a structure of make_gpt(): head size 4, 4 channels per group."""
    blocks = []
    for b in gates["blocks_gate"]:
        heads = len(gates[f"blocks.{b}.attn.heads_gate"])
        blocks.append((heads, 4, 4 * len(gates[f"blocks.{b}.mlp.channels_gate"])))
    return gpt_hand_count(7, 6, 8, blocks)


def _all_units(gpt) -> list[tuple[str, int]]:
    return [(name, unit) for name, gate in named_gates(gpt) if isinstance(gate, UnitGate)
            for unit in range(gate.n_units)]  # fmt: skip


def _with(gates: dict[str, tuple[int, ...]], name: str, unit: int) -> dict[str, tuple[int, ...]]:
    return {**gates, name: tuple(sorted({*gates[name], unit}))}


CASES = [(seed, target) for seed in range(6) for target in (0.3, 0.45, 0.5, 0.7)]


@pytest.mark.parametrize(("seed", "target"), CASES)
def test_fill_stays_in_budget_and_no_unit_left_out_would_fit(seed: int, target: float) -> None:
    gpt = _learned_gpt(seed)
    budget = target * count_weights(gpt)
    trimmed = discretise(gpt, target=target, fill=False)
    filled = discretise(gpt, target=target)
    assert filled.params_after == _count(dict(filled.gates))
    assert filled.params_after >= trimmed.params_after
    for name, kept in trimmed.gates.items():  # the fill only adds
        assert set(kept) <= set(filled.gates[name])
    assert filled.choices == trimmed.choices
    if trimmed.params_after > budget:  # min_kept made the target unreachable: nothing to fill
        assert filled == trimmed
        return
    assert filled.params_after <= budget
    # Brute force over every unit left out: adding it changes nothing or breaks the budget.
    gates = dict(filled.gates)
    for name, unit in _all_units(gpt):
        if unit not in gates[name]:
            grown = _count(_with(gates, name, unit))
            assert grown == filled.params_after or grown > budget, (name, unit)


@pytest.mark.parametrize("target", [0.6, 0.7, 0.788, 0.8, 0.95])
def test_fill_of_equal_units_reaches_the_largest_fill_brute_force_finds(target: float) -> None:
    # One block: heads all weigh the same, channel groups all weigh the same; with every unit
    # shut but min_kept, the best fill is the largest superset within the budget.
    gpt = make_gpt(n_layers=1).double()
    set_gate_mode(gpt, "learn")
    with torch.no_grad():
        for logits in structure_parameters(gpt):
            logits.fill_(-3.0)
    budget = target * count_weights(gpt)
    filled = discretise(gpt, target=target)
    best = max(
        gpt_hand_count(7, 6, 8, [(heads, 4, 4 * groups)])
        for heads, groups in itertools.product(range(1, 3), range(1, 4))
        if gpt_hand_count(7, 6, 8, [(heads, 4, 4 * groups)]) <= budget
    )
    assert filled.params_after == best


def test_fill_brings_back_the_most_probable_unit_that_fits() -> None:
    # Group 2 is likelier than group 1, both shut; only one more group fits.
    gpt = _one_block_gpt(heads=[2.0, -2.0], channels=[2.0, -2.5, -1.0])
    one_group_more = gpt_hand_count(7, 6, 8, [(1, 4, 8)])
    target = (one_group_more + 1) / count_weights(gpt)
    filled = discretise(gpt, target=target)
    assert discretise(gpt, target=target, fill=False).gates["blocks.0.mlp.channels_gate"] == (0,)
    assert filled.gates["blocks.0.mlp.channels_gate"] == (0, 2)
    assert filled.gates["blocks.0.attn.heads_gate"] == (0,)  # a head more would not fit
    assert filled.params_after == one_group_more


def test_fill_never_reopens_a_unit_frozen_shut() -> None:
    gpt = _one_block_gpt(heads=[2.0, -1.0e4], channels=[2.0, 2.0, 2.0])  # head 1 as pruned
    filled = discretise(gpt, target=1.0)
    assert filled.gates["blocks.0.attn.heads_gate"] == (0,)
    assert filled.params_after == gpt_hand_count(7, 6, 8, [(1, 4, 12)])
