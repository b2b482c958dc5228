"""What every gate shares: units with keep-probabilities, three modes, and what each unit owns.

A gate has ``n_units`` units (heads, channel groups, blocks, or the candidates of a choice). Its
mode says where their values come from:

- ``"off"``: every unit open (a choice takes its default); the model computes exactly what it
  computes without the gate. No parameters, no extra arithmetic.
- ``"fixed"``: a 0/1 mask over the units (a choice: a one-hot mask), e.g. from an Optuna trial or
  from discretising a learned structure. No parameters.
- ``"learn"``: the gate owns logits, an ``nn.Parameter`` the bilevel loop trains on search batches.

The mode is not stored apart from the tensors: a gate with ``logits`` learns, one with a ``mask``
is fixed, one with neither is off. So ``load_state_dict`` restores the mode a checkpoint was
saved in.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import one_of


GATE_MODES = ("off", "fixed", "learn")


class Gate(nn.Module):
    """Base class of :class:`UnitGate` and :class:`ChoiceGate`; not used on its own.

    Args:
        n_units: How many units the gate has.
        unit_params: Parameters each unit owns as slices of tensors outside the gate (a head's rows
            of ``qkv``), one count per unit.
        owns: Modules each unit owns whole (a block); gates inside them are nested under the unit.
    """

    logits: nn.Parameter | None
    mask: torch.Tensor | None

    def __init__(
        self, n_units: int, unit_params: Sequence[int], owns: Sequence[Sequence[nn.Module]]
    ) -> None:
        super().__init__()
        self.n_units = n_units
        self.unit_params = tuple(unit_params)
        # A plain tuple, not submodules: the owner (e.g. the GPT) registers them, and registering
        # them twice would save their weights twice.
        self.owns: tuple[tuple[nn.Module, ...], ...] = tuple(tuple(m) for m in owns)
        self.register_parameter("logits", None)
        self.register_buffer("mask", None)
        # Off-mode keep-probabilities; also fixes the device and dtype of new logits and masks,
        # since it follows the model through .to() and .double(). Not saved.
        self.register_buffer("ones", torch.ones(n_units), persistent=False)

    @property
    def mode(self) -> str:
        """``"off"``, ``"fixed"`` or ``"learn"``."""
        if self.logits is not None:
            return "learn"
        return "off" if self.mask is None else "fixed"

    def off(self) -> Gate:
        """All units open (a choice: its default); drops logits and mask. Returns ``self``."""
        self.logits = None
        self.mask = None
        return self

    def keep_probs(self) -> torch.Tensor:
        """Each unit's keep-probability, shape ``(n_units,)``; differentiable in learn mode."""
        if self.logits is not None:
            return self._learned_keep_probs()
        return self.ones if self.mask is None else self.mask

    def _learned_keep_probs(self) -> torch.Tensor:
        raise NotImplementedError

    def unit_names(self) -> list[str]:
        """How records and structures name the units: ``"0"``, ``"1"``, ... or candidate names."""
        return [str(index) for index in range(self.n_units)]

    def _set_logits(self, value: float | torch.Tensor) -> None:
        logits = torch.as_tensor(value, dtype=self.ones.dtype).to(self.ones.device)
        self.logits = nn.Parameter(logits.expand(self.n_units).clone())
        self.mask = None

    def _set_mask(self, mask: torch.Tensor) -> None:
        self.logits = None
        self.mask = mask.to(device=self.ones.device, dtype=self.ones.dtype)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Take on the checkpoint's mode first, so that its logits or mask have a place to go.
        if prefix + "logits" in state_dict and self.logits is None:
            self._set_logits(0.0)
        elif prefix + "mask" in state_dict and self.mask is None:
            self._set_mask(torch.zeros(self.n_units))
        super()._load_from_state_dict(state_dict, prefix, *args)


def check_int(owner: str, field: str, value: Any, low: int) -> int:
    """``value`` if it is an integer ``>= low``, else a :class:`BadInputError` naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BadInputError(f"{owner} {field}: {got(value, f'an integer >= {low}')}")
    return value


def check_choice(owner: str, field: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` if it is one of ``allowed``, else a :class:`BadInputError` naming the field."""
    if value not in allowed:
        raise BadInputError(f"{owner} {field}: {got(value, one_of(allowed))}")
    return value


def check_number(
    owner: str, field: str, value: Any, expected: str, ok: Callable[[float], bool]
) -> float:
    """``value`` as a float if it is a number (not a boolean) for which ``ok`` holds, else a
    :class:`BadInputError` saying it was ``expected``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise BadInputError(f"{owner} {field}: {got(value, expected)}")
    return float(value)


def check_positive(owner: str, field: str, value: Any) -> float:
    """``value`` as a float if it is a number ``> 0``, else a :class:`BadInputError`."""
    return check_number(owner, field, value, "a number > 0", lambda v: v > 0)
