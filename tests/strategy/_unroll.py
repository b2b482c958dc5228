"""A tiny float64 problem and an unrolled training loop driven by a controller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from optuna_bigmodel.strategy import ExactHypergradientController
from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule


STEPS = 8
START = {"lr": 0.5, "warmup": 3.5, "decay": 0.6, "weight_decay": 0.05}


def make_model(seed: int = 0) -> torch.nn.Module:
    """A 5 -> 6 -> 3 tanh MLP in float64."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    return net.double()


def make_batches(n: int, seed: int = 1, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 5, generator=generator, dtype=torch.float64),
         torch.randint(0, 3, (size,), generator=generator))
        for _ in range(n)
    ]


TRAIN = make_batches(STEPS)
SEARCH = make_batches(1, seed=2, size=32)[0]


def loss_of(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def make_schedule(start: dict[str, float], kind: str = "cosine") -> LRSchedule:
    return LRSchedule(
        lr=LearnedValue(start["lr"], 1e-4, 10.0),
        total_steps=STEPS,
        warmup=LearnedValue(start["warmup"], 0.0, 100.0),
        decay=LearnedValue(start["decay"], 0.0, 1.0 if kind == "cosine" else 10.0),
        kind=kind,
    )


def unroll(
    start: dict[str, float] = START,
    *,
    exact: bool = False,
    hessian: bool = True,
    momentum: float = 0.0,
    kind: str = "cosine",
    mu: float = 1.0,
    steps: int = STEPS,
    on_step: Callable[[int, Any, torch.nn.Module], None] | None = None,
) -> tuple[HypergradientController, torch.nn.Module]:
    """Trains the tiny model for ``steps`` steps of SGD driven by a controller (meta_lr 0).

    ``on_step(step, controller, model)`` runs after each step.
    """
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=momentum)
    schedule = make_schedule(start, kind)
    wd = LearnedValue(start["weight_decay"], 1e-6, 1.0)
    if exact:
        controller = ExactHypergradientController(
            optimizer, schedule, weight_decay=wd, hessian=hessian
        )
    else:
        controller = HypergradientController(
            optimizer, schedule, weight_decay=wd, mu=mu, meta_lr=0.0
        )
    for step, batch in enumerate(TRAIN[:steps]):
        controller.before_train_step(step)
        optimizer.zero_grad()
        loss = loss_of(model, batch)
        loss.backward(create_graph=exact)
        controller.before_optimizer_step()
        optimizer.step()
        controller.after_train_step(loss)
        if on_step is not None:
            on_step(step, controller, model)
    return controller, model


def search_loss_after(start: dict[str, float], **kwargs: Any) -> float:
    _, model = unroll(start, **kwargs)
    with torch.no_grad():
        return float(loss_of(model, SEARCH))
