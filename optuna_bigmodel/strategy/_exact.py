"""The exact hypergradient, for tests: the tangent is the forward-mode derivative of the whole
unrolled SGD trajectory (mu = 1 and Hessian-vector products)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy._arguments import split
from optuna_bigmodel.strategy._controller import HypergradientController
from optuna_bigmodel.strategy._schedule import LRSchedule
from optuna_bigmodel.strategy._values import Declared


class ExactHypergradientController(HypergradientController):
    """:class:`HypergradientController` with ``mu = 1`` and the Hessian term, for SGD.

    With ``torch.optim.SGD`` (momentum ``m``, its own weight decay ``w``) one step is
    ``b_t = m b_{t-1} + grad L_t(theta_t) + w theta_t`` and
    ``theta_{t+1} = theta_t - eta_t b_t - eta_t lam theta_t``. Differentiating with respect to a
    strategy value ``p`` gives, with ``z = d theta / dp`` and ``zb = d b / dp``::

        zb_t    = m zb_{t-1} + (H_t + w) z_t
        z_{t+1} = (1 - eta_t lam) z_t - eta_t zb_t
                  + (d log eta_t / dp) delta_t - [p is log lam] eta_t lam theta_t

    which is the first-order update with ``mu = 1`` plus the term ``-eta_t zb_t``. The products
    ``H_t z_t`` come from double backward, so the training loss must be backpropagated with
    ``create_graph=True`` and :meth:`before_optimizer_step` called before ``optimizer.step()``.

    Example:

        .. code-block:: python

            controller = ExactHypergradientController(optimizer, schedule)
            for step, batch in enumerate(batches):
                controller.before_train_step(step)
                optimizer.zero_grad()
                loss = loss_fn(model, batch)
                loss.backward(create_graph=True)
                controller.before_optimizer_step()  # Hessian-vector products: 2 gradients each
                optimizer.step()
                controller.after_train_step(loss)
            exact = controller.hypergradient(loss_fn(model, search_batch))

    Args:
        optimizer: A ``torch.optim.SGD`` (plain or momentum; dampening 0, no Nesterov).
        schedule: As for :class:`HypergradientController`; every group is driven.
        weight_decay: As for :class:`HypergradientController`.
        hessian: False drops the whole ``zb`` term (the Hessian and the optimiser's own weight
            decay), which leaves exactly the first-order variant with ``mu = 1``.

    Note:
        Meant for tests in float64: each step costs one Hessian-vector product (two gradient
        evaluations) per learned value, and the values are never stepped (``meta_lr = 0``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: LRSchedule,
        *,
        weight_decay: Declared | Sequence[Declared] | None = None,
        hessian: bool = True,
    ) -> None:
        # The base constructor snapshots the strategy state, which includes these.
        self._momentum_tangents: dict[str, dict[int, list[torch.Tensor]]] = {}
        super().__init__(optimizer, schedule, weight_decay=weight_decay, mu=1.0, meta_lr=0.0)
        _check_plain_sgd(self.optimizer)
        self.hessian = bool(hessian)
        self._curvature_ready = False

    def before_optimizer_step(self) -> None:
        """Updates ``zb`` with ``H_t z_t``; needs ``loss.backward(create_graph=True)`` first."""
        if self.hessian:
            products = self._hessian_products()
            for name in self.learned_names:
                self._momentum_tangents[name] = {
                    k: self._next_momentum_tangent(name, k, products[name][k])
                    for k in range(len(self.groups))
                }
        for params in self._params:
            for p in params:
                if p.grad is not None:
                    p.grad = p.grad.detach()  # frees the graph before the optimiser steps
        self._curvature_ready = True

    def after_train_step(self, loss: torch.Tensor | float | None = None) -> None:
        if self.hessian and not self._curvature_ready:
            raise RuntimeError(
                "ExactHypergradientController: call before_optimizer_step() after "
                "loss.backward(create_graph=True) and before optimizer.step()"
            )
        self._curvature_ready = False
        super().after_train_step(loss)

    def _curvature_term(self, name: str, k: int) -> list[torch.Tensor] | None:
        return self._momentum_tangents.get(name, {}).get(k)

    def _hessian_products(self) -> dict[str, list[list[torch.Tensor]]]:
        flat = [p for ps in self._params for p in ps]
        with_graph = [i for i, p in enumerate(flat) if p.grad is not None and p.grad.requires_grad]
        if not with_graph:
            raise BadInputError(
                "ExactHypergradientController: the gradients have no graph; expected "
                "loss.backward(create_graph=True) before before_optimizer_step()"
            )
        products = {}
        for name in self.learned_names:
            z = self.tangent(name)
            hz = torch.autograd.grad(
                [flat[i].grad for i in with_graph], flat,
                grad_outputs=[z[i] for i in with_graph], retain_graph=True, allow_unused=True,
            )
            hz = [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(hz, flat)]
            products[name] = split(hz, [len(ps) for ps in self._params])
        return products

    def _next_momentum_tangent(
        self, name: str, k: int, hz: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        group = self.optimizer.param_groups[self.groups[k]]
        momentum, own_decay = group["momentum"], group["weight_decay"]
        z = self._tangents[name].get(k)
        previous = self._momentum_tangents.get(name, {}).get(k)
        out = []
        for i, h in enumerate(hz):
            zb = h.clone()
            if own_decay and z is not None:
                zb.add_(z[i], alpha=own_decay)
            if momentum and previous is not None:
                zb.add_(previous[i], alpha=momentum)
            out.append(zb)
        return out

    def _strategy_state(self) -> dict[str, Any]:
        momentum = {
            name: {k: list(z) for k, z in per_group.items()}
            for name, per_group in self._momentum_tangents.items()
        }
        return {**super()._strategy_state(), "momentum_tangents": momentum}

    def _load_strategy_state(self, state: dict[str, Any]) -> None:
        super()._load_strategy_state(state)
        self._momentum_tangents = {
            n: {int(k): [t.clone() for t in z] for k, z in per_group.items()}
            for n, per_group in state["momentum_tangents"].items()
        }


def _check_plain_sgd(optimizer: torch.optim.Optimizer) -> None:
    if type(optimizer) is not torch.optim.SGD:
        raise BadInputError(
            f"optimizer: got {type(optimizer).__name__}; the exact hypergradient supports "
            "torch.optim.SGD only (plain or momentum)"
        )
    for index, group in enumerate(optimizer.param_groups):
        if group["nesterov"] or group["dampening"] or group["maximize"]:
            raise BadInputError(
                f"optimizer.param_groups[{index}]: got nesterov={group['nesterov']}, "
                f"dampening={group['dampening']}, maximize={group['maximize']}; the exact "
                "hypergradient expects nesterov=False, dampening=0, maximize=False"
            )
