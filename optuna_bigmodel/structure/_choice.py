"""A choice among candidate operators: a softmax mixed op, or single-path Gumbel sampling."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import functools
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import unknown
from optuna_bigmodel.structure._gate import check_choice
from optuna_bigmodel.structure._gate import check_positive
from optuna_bigmodel.structure._gate import Gate


CHOICE_RELAXATIONS = ("softmax", "gumbel")


class ChoiceGate(Gate):
    """Picks one of several candidate operators; each candidate is a unit of the gate.

    Off, it computes the ``default`` candidate; fixed, the chosen one. In learn mode, relaxation
    ``"softmax"`` computes every candidate and returns their sum weighted by
    ``softmax(logits / temperature)`` (a DARTS mixed op). Relaxation ``"gumbel"`` draws one
    candidate per forward pass in training and computes only that one, so memory is one
    candidate's: the forward value is exactly that candidate's output, and the gradient reaching
    the logits is that of its soft Gumbel-softmax weight (straight-through). In eval it computes
    the candidate with the largest logit.

    Candidates are either modules (``gate(x)`` calls them) or names, with the model passing
    one thunk per name to :meth:`combine`, for candidates that are not one module (a layer of a
    ``Sequential``, or skipping it).

    Example:

        .. code::

            import torch
            from torch import nn
            from optuna_bigmodel.structure import ChoiceGate

            act = ChoiceGate({"gelu": nn.GELU(), "relu": nn.ReLU()})
            x = torch.randn(3)
            assert torch.equal(act(x), nn.functional.gelu(x))  # off: the default, the first
            act.fix("relu")
            skip = ChoiceGate(["layer", "skip"])
            y = skip.combine({"layer": lambda: 2 * x, "skip": lambda: x})

    Args:
        candidates: Candidate modules by name, or candidate names.
        default: The candidate computed while off; the first when not given.
        owns: Per candidate name, modules outside the gate it owns (for the size and to tell
            parameter-free candidates); module candidates own themselves.
        relaxation: ``"softmax"`` or ``"gumbel"``, used in learn mode.
        temperature: Divides the logits of the softmax (and of the Gumbel-softmax).
    """

    def __init__(
        self,
        candidates: Mapping[str, nn.Module] | Sequence[str],
        *,
        default: str | None = None,
        owns: Mapping[str, Sequence[nn.Module]] | None = None,
        relaxation: str = "softmax",
        temperature: float = 1.0,
    ) -> None:
        names = _candidate_names(candidates)
        owned = {name: [] for name in names}
        if isinstance(candidates, Mapping):
            owned.update({name: [module] for name, module in candidates.items()})
        for name, modules in (owns or {}).items():
            owned[check_choice("ChoiceGate", "owns", name, names)] = list(modules)
        super().__init__(len(names), [0] * len(names), [owned[name] for name in names])
        self.names = names
        self.default = names[0] if default is None else check_choice(
            "ChoiceGate", "default", default, names
        )
        modules = isinstance(candidates, Mapping)
        self.candidates = nn.ModuleDict(candidates) if modules else None
        self.relaxation = check_choice("ChoiceGate", "relaxation", relaxation, CHOICE_RELAXATIONS)
        self.temperature = check_positive("ChoiceGate", "temperature", temperature)

    def unit_names(self) -> list[str]:
        return list(self.names)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Calls the candidate modules on the arguments as the mode says; see :meth:`combine`."""
        assert self.candidates is not None, "a choice among names is used through combine()"
        if self.logits is None:  # the common case, kept free of per-call overhead
            return self.candidates[self.chosen()](*args, **kwargs)
        thunks = {n: functools.partial(m, *args, **kwargs) for n, m in self.candidates.items()}
        return self.combine(thunks)

    def combine(self, compute: Mapping[str, Callable[[], torch.Tensor]]) -> torch.Tensor:
        """Computes the candidates the mode needs, by calling ``compute[name]()``, and mixes them.

        Only the thunks of the candidates in use are called: one when off, fixed or Gumbel.
        """
        if self.logits is None:
            return compute[self.chosen()]()
        if self.relaxation == "softmax":
            weights = self._learned_keep_probs()
            outputs = [compute[name]() for name in self.names]
            return sum(w.to(y.dtype) * y for w, y in zip(weights, outputs))
        if not self.training:
            return compute[self.names[int(self.logits.argmax())]]()
        soft = F.gumbel_softmax(self.logits, tau=self.temperature, hard=False)
        index = int(soft.argmax())
        out = compute[self.names[index]]()
        # Exactly the chosen output forward; d/dlogits is that of soft[index] * out.
        return out + (soft[index] - soft[index].detach()).to(out.dtype) * out

    def _learned_keep_probs(self) -> torch.Tensor:
        if self.relaxation == "softmax":
            return torch.softmax(self.logits / self.temperature, dim=0)
        # The probability that the Gumbel sample picks each candidate, whatever the temperature.
        return torch.softmax(self.logits, dim=0)

    def learn(self, relaxation: str | None = None) -> ChoiceGate:
        """Learn mode with equal logits (every candidate equally likely). Returns ``self``."""
        if relaxation is not None:
            self.relaxation = check_choice(
                "ChoiceGate", "relaxation", relaxation, CHOICE_RELAXATIONS
            )
        self._set_logits(0.0)
        return self

    def fix(self, choice: str) -> ChoiceGate:
        """Fixed mode: always compute candidate ``choice``. Returns ``self``."""
        if choice not in self.names:
            raise BadInputError(f"ChoiceGate choice: {unknown('candidate', choice, self.names)}")
        mask = torch.zeros(self.n_units)
        mask[self.names.index(choice)] = 1.0
        self._set_mask(mask)
        return self

    def chosen(self) -> str:
        """The candidate an off or fixed gate computes.

        Raises:
            BadInputError: In learn mode; discretise the structure and apply it first.
        """
        if self.logits is not None:
            raise BadInputError(
                "ChoiceGate is in learn mode, so no candidate is chosen yet; "
                "discretise the structure and apply it first"
            )
        if self.mask is None:
            return self.default
        return self.names[int(self.mask.argmax())]


def _candidate_names(candidates: Any) -> tuple[str, ...]:
    names = tuple(candidates.keys() if isinstance(candidates, Mapping) else candidates)
    if isinstance(candidates, str) or not names:
        raise BadInputError(f"ChoiceGate candidates: {got(candidates, 'a non-empty list')}")
    for name in names:
        if not isinstance(name, str) or not name or "." in name:
            expected = "a non-empty candidate name without '.'"
            raise BadInputError(f"ChoiceGate candidates: {got(name, expected)}")
    if len(set(names)) < len(names):
        raise BadInputError(f"ChoiceGate candidates: {got(list(names), 'distinct names')}")
    return names
