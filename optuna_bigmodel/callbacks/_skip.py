"""Skipping the modules a shut unit owns: a residual block that adds nothing returns its input."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from optuna_bigmodel.structure import Gate


class SkipWhenShut:
    """Stands in for ``module.forward`` while the unit that owns ``module`` is frozen shut.

    A block owned by a unit gate scales what it adds to the residual stream by the unit's value,
    so at 0 it returns its input: calling it is wasted work. The first call after freezing runs
    the block and checks exactly that; a module whose output differs from its input (not a
    residual block) keeps running, with a warning. Later calls return the input untouched.

    The stand-in acts while ``gate`` holds the logits it froze, or a fixed mask that shuts the
    unit (a learned structure discretised later drops a frozen unit); switched off, kept by a
    mask, or learning anew, ``module`` runs as before.

    Args:
        module: A module the unit owns whole.
        gate: The unit's gate.
        unit: The unit's index in ``gate``.
        name: How warnings name the module.
        keep_in_graph: Under DDP every parameter must get a gradient at each step, unless DDP
            looks for unused ones; then the input is returned plus zero times the parameters'
            sum, which costs a sum over the parameters instead of the block.
    """

    def __init__(
        self,
        module: nn.Module,
        gate: Gate,
        unit: int,
        name: str,
        keep_in_graph: bool,
        original: Any = None,
    ) -> None:
        self.module = module
        self.gate = gate
        self.unit = unit
        self.logits = gate.logits
        self._mask_seen: tuple[int, int] | None = None  # (id, version) of the last mask read
        self._mask_shuts = False
        self.name = name
        self.keep_in_graph = keep_in_graph
        self.returns_input: bool | None = None  # unknown until the first call checks it
        self.skipped = 0
        # An instance-level forward the module had before (None: its class's forward).
        self.original = original

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args or self.returns_input is False or not self._shut():
            return self._run(*args, **kwargs)
        if self.returns_input is None:
            return self._check(*args, **kwargs)
        self.skipped += 1
        return self._passthrough(args[0])

    def _shut(self) -> bool:
        gate = self.gate
        if gate.logits is not None:
            return gate.logits is self.logits
        if gate.mask is None:
            return False
        # Reading the mask syncs with the device: only when it is a new one, or was changed.
        seen = (id(gate.mask), gate.mask._version)
        if seen != self._mask_seen:
            self._mask_seen, self._mask_shuts = seen, float(gate.mask[self.unit]) == 0.0
        return self._mask_shuts

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        if self.original is not None:
            return self.original(*args, **kwargs)
        return type(self.module).forward(self.module, *args, **kwargs)

    def _check(self, *args: Any, **kwargs: Any) -> Any:
        out = self._run(*args, **kwargs)
        x = args[0]
        same = isinstance(out, torch.Tensor) and isinstance(x, torch.Tensor)
        self.returns_input = same and out.shape == x.shape and bool(torch.equal(out, x))
        if not self.returns_input:
            warnings.warn(
                f"StructurePruning: {self.name} does not return its input while its unit is "
                "shut, so it is not a residual block that can be skipped; it keeps running",
                stacklevel=2,
            )
        return out

    def _passthrough(self, x: torch.Tensor) -> torch.Tensor:
        if not self.keep_in_graph:
            return x
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not params:
            return x
        return x + 0.0 * torch.stack([p.sum() for p in params]).sum().to(x.dtype)

    def __getstate__(self) -> dict[str, Any]:
        # ``original`` may be a bound method or closure; pickling (ddp_spawn, deepcopy of the
        # model) must not fail on it, and a copy starts from the class's forward again.
        state = self.__dict__.copy()
        state["original"] = None
        return state


def install_skip(
    module: nn.Module, gate: Gate, unit: int, name: str, keep_in_graph: bool
) -> SkipWhenShut:
    """Puts a :class:`SkipWhenShut` in place of ``module.forward`` (once) and returns it."""
    current = module.__dict__.get("forward")
    if isinstance(current, SkipWhenShut):
        if current.logits is gate.logits and current.unit == unit:
            return current
        current = current.original  # a stand-in from an earlier learning run: replace it
    skip = SkipWhenShut(module, gate, unit, name, keep_in_graph, original=current)
    module.forward = skip  # type: ignore[method-assign]
    return skip


def skipped_calls(module: nn.Module) -> int:
    """How many calls of ``module`` a :class:`SkipWhenShut` saved (0 if it has none)."""
    current = module.__dict__.get("forward")
    return current.skipped if isinstance(current, SkipWhenShut) else 0
