"""Exporting a gated GPT: the smaller plain GPT its hard masks describe, weights sliced."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from optuna_bigmodel.structure import sliced_linear


if TYPE_CHECKING:
    from optuna_bigmodel.tasks._gpt import Block
    from optuna_bigmodel.tasks._gpt import BlockShape
    from optuna_bigmodel.tasks._gpt import GPT


def export_gpt(model: GPT) -> GPT:
    """A GPT without the dropped blocks, heads and channels, with the chosen activations.

    Its outputs equal ``model``'s with the same hard masks, up to float rounding (the sums
    inside a sliced matrix product run over fewer terms).
    """
    from optuna_bigmodel.tasks._gpt import GPT

    kept = _kept_blocks(model)
    shapes = tuple(_shape(model.blocks[index]) for index in kept)
    config = replace(model.config, n_layers=len(shapes), blocks=shapes)
    weight = model.tok_emb.weight
    with torch.random.fork_rng(devices=[]):  # the caller's random stream stays as it was
        small = GPT(config).to(device=weight.device, dtype=weight.dtype)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks")}
    for new_index, old_index in enumerate(kept):
        block_state = _sliced_block_state(model.blocks[old_index])
        state.update({f"blocks.{new_index}.{k}": v for k, v in block_state.items()})
    small.load_state_dict(state)
    return small


def _kept_blocks(model: GPT) -> list[int]:
    gate = model.blocks_gate
    return list(range(len(model.blocks))) if gate is None else gate.kept_units()


def _shape(block: Block) -> BlockShape:
    from optuna_bigmodel.tasks._gpt import BlockShape

    attn, mlp = block.attn, block.mlp
    heads = attn.heads_gate.kept_units()
    channels = mlp.channels_gate.kept_entries()
    return BlockShape(len(heads), attn.head_size, len(channels), mlp.activation.chosen())


def _sliced_block_state(block: Block) -> dict[str, torch.Tensor]:
    attn, mlp = block.attn, block.mlp
    D, inner = attn.head_size, attn.n_heads * attn.head_size
    columns = [h * D + d for h in attn.heads_gate.kept_units() for d in range(D)]
    rows = [part * inner + c for part in range(3) for c in columns]  # in q, in k, in v
    channels = mlp.channels_gate.kept_entries()
    linears = {
        "attn.qkv": sliced_linear(attn.qkv, rows=rows),
        "attn.proj": sliced_linear(attn.proj, columns=columns),
        "mlp.fc": sliced_linear(mlp.fc, rows=channels),
        "mlp.proj": sliced_linear(mlp.proj, columns=channels),
    }
    state = {f"{n}.{k}": v for n, layer in linears.items() for k, v in layer.state_dict().items()}
    for norm in ("ln_1", "ln_2"):
        state.update({f"{norm}.{k}": v for k, v in getattr(block, norm).state_dict().items()})
    return state
