"""Helpers of the structure tests: tiny gated models (every check runs in milliseconds), a hand
count of a GPT's weights, and central finite differences."""

from __future__ import annotations

from collections.abc import Callable

import torch

from optuna_bigmodel.tasks._gpt import GPT
from optuna_bigmodel.tasks._gpt import GPTConfig
from optuna_bigmodel.tasks._mlp import MLP


VOCAB, SEQ, C = 7, 6, 8


def make_gpt(seed: int = 0, **fields: object) -> GPT:
    torch.manual_seed(seed)
    config = {"vocab_size": VOCAB, "block_size": SEQ, "d_model": C, "n_layers": 2, "n_heads": 2,
              "d_ff": 12, "ff_groups": 3, **fields}  # fmt: skip
    return GPT(GPTConfig(**config)).eval()


def make_mlp(seed: int = 0, widths: tuple[int, ...] = (6, 6, 6), unit_groups: int = 3) -> MLP:
    torch.manual_seed(seed)
    return MLP(5, 4, widths, dropout=0.0, unit_groups=unit_groups).eval()


def tokens(batch: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, SEQ), generator=torch.Generator().manual_seed(seed))


def gpt_hand_count(V: int, T: int, C: int, blocks: list[tuple[int, int, int]]) -> int:
    """Weights of a tied GPT whose blocks have (heads, head size, d_ff)."""
    count = V * C + T * C + 2 * C  # embeddings (the head shares the token one), ln_f
    for heads, D, f in blocks:
        inner = heads * D
        count += 4 * C  # two LayerNorms
        count += 3 * inner * C + 3 * inner + inner * C + C  # qkv, proj
        count += f * C + f + f * C + C  # fc, proj
    return count


def central_difference(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, h: float = 1e-6
) -> torch.Tensor:
    """d f / d x for scalar f, one coordinate at a time, in float64."""
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x)
        step.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad
