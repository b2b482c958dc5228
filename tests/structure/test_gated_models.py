"""The built-in GPT and MLP with gates: off is the plain model, fixed is manual zeroing, and the
export equals the hard-masked model, with the weight count a hand count gives."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from optuna_bigmodel.structure import apply_structure
from optuna_bigmodel.structure import count_weights
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import export_model
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import set_gate_mode
from optuna_bigmodel.structure import Structure
from optuna_bigmodel.structure import structure_parameters
from optuna_bigmodel.structure import weight_parameters
from optuna_bigmodel.tasks._gpt import GPT

from tests.structure._structure_helpers import gpt_hand_count
from tests.structure._structure_helpers import make_gpt
from tests.structure._structure_helpers import tokens


ACT = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu}


def plain_gpt(model: GPT, idx: torch.Tensor, blocks=None, acts=None) -> torch.Tensor:
    """nanoGPT's forward written out with torch.nn.functional, reading the model's weights."""
    blocks = list(model.blocks) if blocks is None else blocks
    B, T = idx.shape
    x = model.tok_emb.weight[idx] + model.pos_emb.weight[:T]
    for i, block in enumerate(blocks):
        a, m = block.attn, block.mlp
        h = F.layer_norm(x, (x.shape[-1],), block.ln_1.weight, block.ln_1.bias)
        inner = a.n_heads * a.head_size
        q, k, v = F.linear(h, a.qkv.weight, a.qkv.bias).split(inner, dim=2)
        q, k, v = (t.view(B, T, a.n_heads, a.head_size).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, inner)
        x = x + F.linear(y, a.proj.weight, a.proj.bias)
        h = F.layer_norm(x, (x.shape[-1],), block.ln_2.weight, block.ln_2.bias)
        act = ACT["gelu" if acts is None else acts[i]]
        x = x + F.linear(act(F.linear(h, m.fc.weight, m.fc.bias)), m.proj.weight, m.proj.bias)
    x = F.layer_norm(x, (x.shape[-1],), model.ln_f.weight, model.ln_f.bias)
    return F.linear(x, model.tok_emb.weight)


def plain_mlp(model: nn.Module, layers: list[int]) -> nn.Sequential:
    modules = []
    for i in layers:
        modules += [getattr(model, f"fc{i}"), nn.ReLU()]
    return nn.Sequential(*modules, model.out)


def test_gpt_with_gates_off_is_the_plain_gpt(gpt: GPT) -> None:
    idx = tokens()
    assert torch.equal(gpt(idx), plain_gpt(gpt, idx))
    assert list(structure_parameters(gpt)) == []
    assert count_weights(gpt) == sum(p.numel() for p in gpt.parameters())


def test_mlp_with_gates_off_is_the_plain_mlp(mlp: nn.Module) -> None:
    x = torch.randn(4, 5)
    assert torch.equal(mlp(x), plain_mlp(mlp, [0, 1, 2])(x))


def test_fixed_head_and_channel_masks_equal_zeroing_those_weights(gpt: GPT) -> None:
    reference = copy.deepcopy(gpt)
    gpt.blocks[0].attn.heads_gate.fix([1])
    gpt.blocks[1].mlp.channels_gate.fix([0, 2])  # channels 4..7 dropped (groups of 4)
    with torch.no_grad():
        reference.blocks[0].attn.proj.weight[:, :4] = 0.0  # head 0's columns (head size 4)
        reference.blocks[1].mlp.proj.weight[:, 4:8] = 0.0
    idx = tokens()
    torch.testing.assert_close(gpt(idx), plain_gpt(reference, idx), rtol=0, atol=1e-6)


def test_fixed_blocks_and_activations_equal_the_gpt_built_that_way(gpt: GPT) -> None:
    gpt.blocks_gate.fix([1])
    gpt.blocks[1].mlp.activation.fix("silu")
    idx = tokens()
    expected = plain_gpt(gpt, idx, blocks=[gpt.blocks[1]], acts=["silu"])
    torch.testing.assert_close(gpt(idx), expected, rtol=0, atol=1e-6)


def test_fixed_units_and_skips_equal_zeroing_and_removing_layers(mlp: nn.Module) -> None:
    reference = copy.deepcopy(mlp)
    mlp.units0.fix([0, 2])
    mlp.skip1.fix("skip")
    with torch.no_grad():
        reference.fc0.weight[2:4] = 0.0
        reference.fc0.bias[2:4] = 0.0
    x = torch.randn(4, 5)
    torch.testing.assert_close(mlp(x), plain_mlp(reference, [0, 2])(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_exported_gpt_equals_the_hard_masked_gpt(dtype: torch.dtype, atol: float) -> None:
    gpt = make_gpt(n_layers=3, n_heads=2, d_ff=12, ff_groups=3).to(dtype)
    gpt.blocks_gate.fix([0, 2])
    gpt.blocks[0].attn.heads_gate.fix([1])
    gpt.blocks[2].mlp.channels_gate.fix([0, 2])
    gpt.blocks[2].mlp.activation.fix("silu")
    gpt.blocks[1].attn.heads_gate.fix([0])  # inside the dropped block: no effect
    small = export_model(gpt)
    idx = tokens()
    torch.testing.assert_close(small(idx), gpt(idx), rtol=0, atol=atol)
    assert small.tok_emb.weight.dtype == dtype and small.head.weight is small.tok_emb.weight
    hand = gpt_hand_count(7, 6, 8, [(1, 4, 12), (2, 4, 8)])
    assert count_weights(small) == hand
    structure = discretise(gpt)
    assert structure.params_after == hand and structure.params_before == count_weights(gpt)
    assert [g.mode for _, g in named_gates(small)] == ["off"] * len(list(named_gates(small)))


def test_exported_mlp_equals_the_hard_masked_mlp(mlp: nn.Module) -> None:
    mlp.units0.fix([0, 2])
    mlp.skip1.fix("skip")
    mlp.units2.fix([1])
    small = export_model(mlp)
    x = torch.randn(4, 5)
    torch.testing.assert_close(small(x), mlp(x), rtol=0, atol=1e-5)
    assert small.widths == (4, 2)
    hand = (4 * 5 + 4) + (2 * 4 + 2) + (4 * 2 + 4)
    assert count_weights(small) == hand == discretise(mlp).params_after


def test_export_of_a_learning_model_is_refused(gpt: GPT) -> None:
    set_gate_mode(gpt, "learn")
    with pytest.raises(ValueError, match="learn mode"):
        export_model(gpt)
    with pytest.raises(ValueError, match="cannot export itself"):
        export_model(nn.Linear(2, 2))


def test_weights_and_gate_logits_are_told_apart(gpt: GPT) -> None:
    set_gate_mode(gpt, "learn", unit_relaxation="hard_concrete", choice_relaxation="gumbel")
    logits = list(structure_parameters(gpt))
    weights = list(weight_parameters(gpt))
    # 1 blocks gate, and per block a heads gate, a channels gate and an activation choice.
    assert len(logits) == 1 + 3 * 2 and all(p.shape[0] in (2, 3) for p in logits)
    assert {id(p) for p in logits}.isdisjoint(id(p) for p in weights)
    assert len(logits) + len(weights) == len(list(gpt.parameters()))
    set_gate_mode(gpt, "off")
    assert list(structure_parameters(gpt)) == []


def test_a_gate_step_leaves_the_weights_and_a_weight_step_leaves_the_gates(gpt: GPT) -> None:
    set_gate_mode(gpt, "learn")
    gates = torch.optim.SGD(structure_parameters(gpt), lr=0.1)
    weights = torch.optim.SGD(weight_parameters(gpt), lr=0.1)
    before = copy.deepcopy(gpt.state_dict())
    gpt(tokens()).sum().backward()
    gates.step()
    after = gpt.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.endswith("logits") for k in changed)
    weights.step()
    assert all(torch.equal(gpt.state_dict()[k], after[k]) for k in changed)


def test_structure_round_trips_through_json_and_applies(gpt: GPT) -> None:
    gpt.blocks[0].attn.heads_gate.fix([1])
    structure = discretise(gpt)
    again = Structure.from_dict(structure.to_dict())
    other = make_gpt()
    apply_structure(other, again)
    assert discretise(other) == structure
    idx = tokens()
    torch.testing.assert_close(other(idx), gpt(idx))
