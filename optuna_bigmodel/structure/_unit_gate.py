"""A multiplicative gate over units: residual blocks, attention heads, groups of channels."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence

import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.structure import _relax
from optuna_bigmodel.structure._gate import check_choice
from optuna_bigmodel.structure._gate import check_int
from optuna_bigmodel.structure._gate import check_number
from optuna_bigmodel.structure._gate import check_positive
from optuna_bigmodel.structure._gate import Gate


UNIT_RELAXATIONS = ("sigmoid", "hard_concrete")
# A unit with keep-probability at least this is kept when the structure is discretised.
KEEP_THRESHOLD = 0.5


class UnitGate(Gate):
    """Scales each of ``n_units`` units of a tensor by its gate value.

    ``gate(x, dim)`` multiplies the slices of ``x`` along ``dim``: unit ``i`` covers
    ``unit_size[i]`` consecutive entries (one head, or a group of channels). Off, it returns ``x``
    itself. In learn mode the value is ``sigmoid(s)`` (relaxation ``"sigmoid"``) or a hard-concrete
    sample in training and its deterministic mean in eval (``"hard_concrete"``, Louizos et al.
    2018); :meth:`keep_probs` is ``sigmoid(s)`` or the closed-form expected L0 ``P(z != 0)``.

    Example:

        .. code::

            import torch
            from optuna_bigmodel.structure import UnitGate

            gate = UnitGate(4, unit_size=8, unit_params=2 * 16 * 8)  # 4 groups of 8 channels
            x = torch.randn(2, 32)
            assert gate(x) is x  # off: nothing changes
            gate.fix([0, 2])  # keep groups 0 and 2
            assert gate(x)[:, 8:16].eq(0).all()
            gate.learn(init_keep=0.9)  # gate.logits is now an nn.Parameter

    Args:
        n_units: How many units.
        unit_size: Entries of the gated dimension per unit: one int for all, or one per unit.
        unit_params: Weights each unit owns as slices of other tensors (e.g. a head's rows of
            ``qkv`` and columns of ``proj``): one int for all, or one per unit. Drives the size.
        owns: Per unit, modules it owns whole (a block); their weights and gates count only as
            much as the unit is kept.
        min_kept: The fewest units any discretised or sampled structure keeps (the collapse
            guard of :class:`CollapseGuard` also keeps this many open while learning).
        relaxation: ``"sigmoid"`` or ``"hard_concrete"``, used in learn mode.
        temperature: The hard-concrete temperature ``beta``.

    Note:
        Units are exchangeable in sample mode: :func:`structure_knobs` asks how many to keep, and
        keeps the first ones. Learned structures keep any subset.
    """

    def __init__(
        self,
        n_units: int,
        *,
        unit_size: int | Sequence[int] = 1,
        unit_params: int | Sequence[int] = 0,
        owns: Sequence[Sequence[nn.Module]] | None = None,
        min_kept: int = 1,
        relaxation: str = "sigmoid",
        temperature: float = _relax.BETA,
    ) -> None:
        name = "UnitGate"
        n_units = check_int(name, "n_units", n_units, 1)
        sizes = _per_unit(name, "unit_size", unit_size, n_units, low=1)
        params = _per_unit(name, "unit_params", unit_params, n_units, low=0)
        owns = [()] * n_units if owns is None else list(owns)
        if len(owns) != n_units:
            detail = f"got {len(owns)} lists; expected one list of modules per unit ({n_units})"
            raise BadInputError(f"{name} owns: {detail}")
        super().__init__(n_units, params, owns)
        self.min_kept = check_int(name, "min_kept", min_kept, 0)
        if self.min_kept > n_units:
            raise BadInputError(f"{name} min_kept: {got(min_kept, f'at most n_units = {n_units}')}")
        self.relaxation = check_choice(name, "relaxation", relaxation, UNIT_RELAXATIONS)
        self.temperature = check_positive(name, "temperature", temperature)
        self.unit_size = tuple(sizes)
        index = torch.repeat_interleave(torch.arange(n_units), torch.tensor(sizes))
        uniform = len(set(sizes)) == 1
        self.register_buffer("unit_of_entry", None if uniform else index, persistent=False)

    def forward(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """``x`` with the entries of each unit along ``dim`` scaled by the unit's gate value."""
        values = self.values()
        if values is None:
            return x
        width = sum(self.unit_size)
        assert x.shape[dim] == width, f"gate covers {width} entries, dim {dim} has {x.shape[dim]}"
        if self.unit_of_entry is not None:
            values = values[self.unit_of_entry]
        elif self.unit_size[0] > 1:
            values = values.repeat_interleave(self.unit_size[0])
        shape = [1] * x.dim()
        shape[dim] = width
        return x * values.to(x.dtype).view(shape)

    def values(self) -> torch.Tensor | None:
        """The multiplier of each unit for one forward pass; None when off.

        A hard-concrete gate in training draws a fresh sample on each call, so a model that
        applies one unit in several places calls this once and indexes the result.
        """
        if self.logits is None:
            return self.mask
        if self.relaxation == "sigmoid":
            return torch.sigmoid(self.logits)
        if self.training:
            return _relax.hard_concrete_sample(self.logits, self.temperature)
        return _relax.hard_concrete_mean(self.logits)

    def _learned_keep_probs(self) -> torch.Tensor:
        if self.relaxation == "sigmoid":
            return torch.sigmoid(self.logits)
        return _relax.hard_concrete_keep(self.logits, self.temperature)

    def logit_for(self, keep: float) -> float:
        """The logit whose keep-probability is ``keep``, under this gate's relaxation."""
        if self.relaxation == "sigmoid":
            return _relax.sigmoid_logits(keep)
        return _relax.hard_concrete_logits(keep, self.temperature)

    def learn(self, init_keep: float = 0.9, relaxation: str | None = None) -> UnitGate:
        """Learn mode: new logits with every keep-probability ``init_keep``. Returns ``self``."""
        if relaxation is not None:
            self.relaxation = check_choice("UnitGate", "relaxation", relaxation, UNIT_RELAXATIONS)
        check_number("UnitGate", "init_keep", init_keep, "a number in (0, 1)", lambda v: 0 < v < 1)
        self._set_logits(self.logit_for(init_keep))
        return self

    def fix(self, kept: Iterable[int]) -> UnitGate:
        """Fixed mode: keep the units whose indices are in ``kept``, zero the rest."""
        kept = list(kept)
        for index in kept:
            check_int("UnitGate kept", "unit", index, 0)
            if index >= self.n_units:
                expected = f"a unit index in [0, {self.n_units - 1}]"
                raise BadInputError(f"UnitGate kept: {got(index, expected)}")
        if len(set(kept)) < self.min_kept:
            expected = f"at least min_kept = {self.min_kept} distinct units"
            raise BadInputError(f"UnitGate kept: {got(kept, expected, with_kind=False)}")
        mask = torch.zeros(self.n_units)
        mask[kept] = 1.0
        self._set_mask(mask)
        return self

    def kept_units(self) -> list[int]:
        """The indices of the open units, for an off or fixed gate.

        Raises:
            BadInputError: In learn mode, where no unit is open or shut yet; discretise first.
        """
        if self.logits is not None:
            raise BadInputError(
                "UnitGate is in learn mode, so its units are neither kept nor dropped yet; "
                "discretise the structure and apply it first"
            )
        return [i for i, value in enumerate(self.keep_probs().tolist()) if value > 0.0]

    def kept_entries(self) -> list[int]:
        """The indices along the gated dimension that the kept units cover (off or fixed gate)."""
        starts = [sum(self.unit_size[:unit]) for unit in range(self.n_units)]
        return [
            entry
            for unit in self.kept_units()
            for entry in range(starts[unit], starts[unit] + self.unit_size[unit])
        ]


def group_sizes(width: int, n_groups: int) -> list[int]:
    """Sizes of ``min(n_groups, width)`` consecutive groups covering ``width`` entries, as even
    as they can be (earlier groups one larger): the ``unit_size`` of a gate over channel groups.
    """
    n_groups = min(n_groups, width)
    return [width // n_groups + (1 if g < width % n_groups else 0) for g in range(n_groups)]


def _per_unit(owner: str, field: str, value: int | Sequence[int], n: int, low: int) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [check_int(owner, field, value, low)] * n
    values = list(value)
    if len(values) != n:
        raise BadInputError(f"{owner} {field}: {got(value, f'one int or {n} ints, one per unit')}")
    return [check_int(owner, field, v, low) for v in values]
