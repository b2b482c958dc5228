"""Exporting a structure: a smaller plain model whose weights are physically sliced."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError


def export_model(module: nn.Module) -> nn.Module:
    """The plain model that computes what ``module`` computes with its gates' hard masks.

    Dropped units are sliced out of the weights, dropped blocks removed and chosen candidates
    built in; every gate of the result is off. A model supports this by defining
    ``exported(self) -> nn.Module``, as the built-in GPT and MLP do. Apply a structure first
    (:func:`apply_structure` with :func:`discretise`'s result): learned gates are not hard.

    Example:

        .. code::

            apply_structure(model, discretise(model, target=0.5))
            small = export_model(model)
            print(count_weights(small))

    Raises:
        BadInputError: If ``module`` cannot export itself, or a gate of it is still learning.
    """
    exported = getattr(module, "exported", None)
    if not callable(exported):
        raise BadInputError(
            f"export_model: a {type(module).__name__} cannot export itself; "
            "expected a model that defines exported(), such as the built-in GPT or MLP"
        )
    return exported()


@torch.no_grad()
def sliced_linear(
    linear: nn.Linear,
    rows: Sequence[int] | torch.Tensor | None = None,
    columns: Sequence[int] | torch.Tensor | None = None,
) -> nn.Linear:
    """A new ``nn.Linear`` with the output ``rows`` and input ``columns`` of ``linear`` (all when
    None); its bias keeps the same rows. The copy owns its tensors."""
    weight = linear.weight
    rows = _index(rows, weight.shape[0], weight.device)
    columns = _index(columns, weight.shape[1], weight.device)
    bias = linear.bias is not None
    # Built on the meta device: no initialisation to compute, no draw from the random stream.
    out = nn.Linear(len(columns), len(rows), bias=bias, device="meta", dtype=weight.dtype)
    out = out.to_empty(device=weight.device)
    out.weight.copy_(weight[rows][:, columns])
    if bias:
        out.bias.copy_(linear.bias[rows])
    return out


def _index(
    index: Sequence[int] | torch.Tensor | None, size: int, device: torch.device
) -> torch.Tensor:
    if index is None:
        return torch.arange(size, device=device)
    return torch.as_tensor(index, dtype=torch.long, device=device)
