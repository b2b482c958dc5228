"""A small GPT: a decoder-only transformer that predicts each next token, read top to bottom.

It follows nanoGPT (Karpathy): token + position embeddings, ``n_layers`` pre-LayerNorm blocks of
causal self-attention and an MLP, a final LayerNorm and a head that shares the token embedding.

Its structure is gated (see ``optuna_bigmodel.structure``): a gate over the blocks, one over the
heads of each attention, one over groups of channels of each MLP, and a choice of each MLP's
activation. All gates start off, and then the model computes exactly the plain GPT.

Shape letters: B batch, T time (position in the sequence), C = d_model, H = n_heads,
D = head size (C // H unless pruned), F = d_ff, V = vocab_size.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch
from torch import nn
import torch.nn.functional as F

from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import group_sizes
from optuna_bigmodel.structure import UnitGate


ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


@dataclass(frozen=True)
class BlockShape:
    """The shape of one block where blocks differ, as in an exported (pruned) GPT.

    Args:
        n_heads: Attention heads.
        head_size: Width of each head.
        d_ff: Hidden width of the MLP.
        activation: The MLP's activation, one of :data:`ACTIVATIONS`.
    """

    n_heads: int
    head_size: int
    d_ff: int
    activation: str = "gelu"


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a :class:`GPT`.

    Args:
        vocab_size: How many different tokens there are.
        block_size: The longest sequence the model reads (positions it has embeddings for).
        d_model: The width of the residual stream.
        n_layers: How many transformer blocks; 0 leaves an embedding-to-logits model.
        n_heads: Attention heads per block; must divide ``d_model``.
        d_ff: The hidden width of each block's MLP.
        dropout: Dropout on embeddings, attention weights and residual branches.
        ff_groups: Into how many groups of channels each MLP's gate splits ``d_ff``.
        blocks: One shape per block where they differ; None: every block has ``n_heads`` heads of
            ``d_model // n_heads``, ``d_ff`` and GELU.
    """

    vocab_size: int
    block_size: int
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    d_ff: int = 128
    dropout: float = 0.0
    ff_groups: int = 4
    blocks: tuple[BlockShape, ...] | None = None

    def __post_init__(self) -> None:
        assert self.d_model % self.n_heads == 0, (
            f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})"
        )
        assert 0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"
        assert self.ff_groups >= 1, f"ff_groups must be >= 1, got {self.ff_groups}"
        assert self.blocks is None or len(self.blocks) == self.n_layers, (
            f"{len(self.blocks or ())} block shapes for n_layers = {self.n_layers}"
        )

    def block_shapes(self) -> tuple[BlockShape, ...]:
        """The shape of each block."""
        if self.blocks is not None:
            return self.blocks
        shape = BlockShape(self.n_heads, self.d_model // self.n_heads, self.d_ff)
        return (shape,) * self.n_layers


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier positions."""

    def __init__(self, d_model: int, shape: BlockShape, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.head_size = shape.n_heads, shape.head_size
        self.dropout = dropout
        inner = shape.n_heads * shape.head_size  # = d_model unless heads were pruned
        self.qkv = nn.Linear(d_model, 3 * inner)  # queries, keys, values at once
        self.proj = nn.Linear(inner, d_model)
        self.resid_dropout = nn.Dropout(dropout)
        # A head owns its D rows of each of q, k, v (weights and biases) and D columns of proj.
        head_params = 4 * d_model * shape.head_size + 3 * shape.head_size
        self.heads_gate = UnitGate(shape.n_heads, unit_params=head_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        H, D = self.n_heads, self.head_size
        q, k, v = self.qkv(x).split(H * D, dim=2)  # each (B, T, H * D)
        q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )  # (B, H, T, D)
        y = self.heads_gate(y, dim=1)  # each head scaled by its gate
        y = y.transpose(1, 2).contiguous().view(B, T, H * D)  # heads side by side again
        return self.resid_dropout(self.proj(y))  # (B, T, C)


class MLP(nn.Module):
    """The position-wise feed-forward part of a block: C -> F -> C."""

    def __init__(self, d_model: int, shape: BlockShape, dropout: float, ff_groups: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, shape.d_ff)
        candidates = {name: make() for name, make in ACTIVATIONS.items()}
        self.activation = ChoiceGate(candidates, default=shape.activation)
        # A channel owns a row of fc (and its bias) and a column of proj.
        sizes = group_sizes(shape.d_ff, ff_groups)
        params = [(2 * d_model + 1) * size for size in sizes]
        self.channels_gate = UnitGate(len(sizes), unit_size=sizes, unit_params=params)
        self.proj = nn.Linear(shape.d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.channels_gate(self.activation(self.fc(x)))  # (B, T, F)
        return self.dropout(self.proj(h))  # (B, T, C)


class Block(nn.Module):
    """One transformer block. Pre-LN: each branch normalises its input and adds to the residual
    stream, which keeps deep stacks trainable without warm-up."""

    def __init__(self, d_model: int, shape: BlockShape, dropout: float, ff_groups: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, shape, dropout)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, shape, dropout, ff_groups)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``keep``: the block's gate value, scaling both branches (0 leaves ``x`` as it was)."""
        if keep is None:
            x = x + self.attn(self.ln_1(x))  # (B, T, C)
            return x + self.mlp(self.ln_2(x))  # (B, T, C)
        keep = keep.to(x.dtype)
        x = x + keep * self.attn(self.ln_1(x))
        return x + keep * self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``.

    Logits at position ``t`` depend only on tokens ``0..t``, so one forward pass trains on every
    prefix of the sequence at once.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        C = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(C, shape, config.dropout, config.ff_groups) for shape in config.block_shapes()
        )
        # A dropped block takes its weights and its inner gates with it.
        owns = [[block] for block in self.blocks]
        self.blocks_gate = UnitGate(len(owns), owns=owns) if owns else None
        self.ln_f = nn.LayerNorm(C)
        self.head = nn.Linear(C, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied: one matrix both reads and writes tokens
        self.apply(_init_weights)
        for name, param in self.named_parameters():
            # Each block adds two branches to the residual stream; scaling their last layer
            # keeps the stream's variance from growing with depth (GPT-2).
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        assert T <= self.config.block_size, (
            f"sequence length {T} exceeds block_size {self.config.block_size}"
        )
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        keep = None if self.blocks_gate is None else self.blocks_gate.values()  # (n_layers,)
        for index, block in enumerate(self.blocks):
            x = block(x, None if keep is None else keep[index])  # (B, T, C)
        return self.head(self.ln_f(x))  # (B, T, V)

    def exported(self) -> GPT:
        """The plain GPT that the gates' hard masks describe, with its weights sliced."""
        from optuna_bigmodel.tasks._gpt_export import export_gpt

        return export_gpt(self)


def _init_weights(module: nn.Module) -> None:
    # Small normal weights and zero biases, as in GPT-2; PyTorch's defaults suit wide layers less.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
