"""A small GPT: a decoder-only transformer that predicts each next token, read top to bottom.

It follows nanoGPT (Karpathy): token + position embeddings, ``n_layers`` pre-LayerNorm blocks of
causal self-attention and an MLP, a final LayerNorm and a head that shares the token embedding.

Shape letters: B batch, T time (position in the sequence), C = d_model, H = n_heads,
D = C // H (head size), F = d_ff, V = vocab_size.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch
from torch import nn
import torch.nn.functional as F


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
    """

    vocab_size: int
    block_size: int
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    d_ff: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        assert self.d_model % self.n_heads == 0, (
            f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})"
        )
        assert 0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier positions."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)  # queries, keys, values at once
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H, D = self.n_heads, C // self.n_heads
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(y))  # (B, T, C)


class MLP(nn.Module):
    """The position-wise feed-forward part of a block: C -> F -> C."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))  # (B, T, F) inside, (B, T, C) out


class Block(nn.Module):
    """One transformer block. Pre-LN: each branch normalises its input and adds to the residual
    stream, which keeps deep stacks trainable without warm-up."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class GPT(nn.Module):
    """Maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``.

    Logits at position ``t`` depend only on tokens ``0..t``, so one forward pass trains on every
    prefix of the sequence at once.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
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
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.head(self.ln_f(x))  # (B, T, V)


def _init_weights(module: nn.Module) -> None:
    # Small normal weights and zero biases, as in GPT-2; PyTorch's defaults suit wide layers less.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
