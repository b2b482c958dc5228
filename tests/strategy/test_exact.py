"""The exact hypergradient against finite differences of the unrolled run, the first-order
variant as the exact one without its Hessian term, and mu = 0 as the greedy rule."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.func import functional_call
from torch.func import grad
from torch.func import jvp

from _unroll import loss_of
from _unroll import SEARCH
from _unroll import search_loss_after
from _unroll import START
from _unroll import TRAIN
from _unroll import unroll
from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy import ExactHypergradientController
from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule


pytestmark = pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")

LOG_SCALE = ("lr", "weight_decay")


def _finite_difference(name: str, eps: float = 1e-5, **kwargs: Any) -> float:
    def shifted(sign: int) -> dict[str, float]:
        start = dict(START)
        value = start[name]
        start[name] = value * math.exp(sign * eps) if name in LOG_SCALE else value + sign * eps
        return start

    up, down = search_loss_after(shifted(1), **kwargs), search_loss_after(shifted(-1), **kwargs)
    return (up - down) / (2 * eps)


@pytest.mark.parametrize(
    "momentum, kind", [(0.0, "cosine"), (0.9, "exponential")], ids=["sgd-cosine", "momentum-exp"]
)
def test_exact_hypergradient_matches_finite_differences(momentum: float, kind: str) -> None:
    controller, model = unroll(exact=True, momentum=momentum, kind=kind)
    exact = controller.hypergradient(loss_of(model, SEARCH))
    assert set(exact) == {"lr", "weight_decay", "warmup", "decay"}
    for name, value in exact.items():
        reference = _finite_difference(name, momentum=momentum, kind=kind)
        assert abs(value - reference) <= 1e-3 * abs(reference), (name, value, reference)
        assert abs(reference) > 1e-5  # the check is not vacuous


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_first_order_equals_exact_without_its_hessian_term(momentum: float) -> None:
    first_order, model_a = unroll(momentum=momentum, mu=1.0)
    exact, model_b = unroll(exact=True, hessian=False, momentum=momentum)
    without = exact.hypergradient(loss_of(model_b, SEARCH))
    assert first_order.hypergradient(loss_of(model_a, SEARCH)) == pytest.approx(without, rel=1e-12)
    for name in first_order.learned_names:
        for a, b in zip(first_order.tangent(name), exact.tangent(name)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_the_hessian_term_is_minus_eta_times_hessian_times_tangent() -> None:
    # From z_0 = 0 both variants agree on z_1; after step 1 they differ by exactly
    # -eta_1 H_1 z_1, with H_1 the Hessian of step 1's training loss at theta_1, computed here
    # independently (forward-over-reverse with torch.func).
    seen: dict[str, Any] = {}

    def capture(step: int, controller: HypergradientController, model: torch.nn.Module) -> None:
        if step == 0:
            seen["theta"] = {k: v.detach().clone() for k, v in model.named_parameters()}
            names = ("lr", "weight_decay", "warmup")
            seen["z"] = {n: [t.clone() for t in controller.tangent(n)] for n in names}
        seen["eta"] = controller.optimizer.param_groups[0]["lr"]

    first_order, model = unroll(mu=1.0, steps=2, on_step=capture)
    exact, _ = unroll(exact=True, steps=2)
    names = [k for k, _ in model.named_parameters()]

    def train_loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
        x, y = TRAIN[1]
        return torch.nn.functional.cross_entropy(functional_call(model, params, (x,)), y)

    for name, z1 in seen["z"].items():
        _, hz = jvp(grad(train_loss), (seen["theta"],), (dict(zip(names, z1)),))
        assert max(float(h.abs().max()) for h in hz.values()) > 1e-6
        for key, a, b in zip(names, first_order.tangent(name), exact.tangent(name)):
            torch.testing.assert_close(b - a, -seen["eta"] * hz[key], rtol=1e-9, atol=1e-13)


def test_mu_zero_is_the_greedy_rule_for_sgd() -> None:
    # Baydin et al. 2018 in log space, with the update direction d_t = g_t + lam theta_t:
    # dJ/d log eta = -eta_t grad J_val(theta_{t+1}) . d_t, and only the last step counts.
    last: dict[str, Any] = {}

    def capture(step: int, controller: HypergradientController, model: torch.nn.Module) -> None:
        last["grads"] = [p.grad.detach().clone() for p in model.parameters()]
        last["eta"] = controller.optimizer.param_groups[0]["lr"]
        last["start"] = [t.clone() for t in controller._start[0]]

    controller, model = unroll(mu=0.0, on_step=capture)
    search_grads = torch.autograd.grad(loss_of(model, SEARCH), list(model.parameters()))
    hypergradients = controller.hypergradient(loss_of(model, SEARCH))
    lam, eta = START["weight_decay"], last["eta"]
    directions = [g + lam * theta for g, theta in zip(last["grads"], last["start"])]
    greedy = -eta * sum(torch.sum(s * d) for s, d in zip(search_grads, directions))
    assert hypergradients["lr"] == pytest.approx(float(greedy), rel=1e-12)
    on_theta = -eta * lam * sum(torch.sum(s * t) for s, t in zip(search_grads, last["start"]))
    assert hypergradients["weight_decay"] == pytest.approx(float(on_theta), rel=1e-12)


def test_mu_zero_is_the_greedy_rule_for_adam_and_mu_weighs_older_steps() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3).double()
    optimizer = torch.optim.Adam(model.parameters(), eps=1e-8)
    schedule = LRSchedule(lr=LearnedValue(0.01, 1e-5, 1.0), total_steps=10)
    controller = HypergradientController(optimizer, schedule, mu=0.0, meta_lr=0.0)
    controller.before_train_step(0)
    loss = loss_of(model, TRAIN[0])
    loss.backward()
    first_grads = [p.grad.clone() for p in model.parameters()]
    optimizer.step()
    controller.after_train_step(loss)
    search_grads = torch.autograd.grad(loss_of(model, SEARCH), list(model.parameters()))
    # Adam's first step moves by eta * g / (|g| + eps) (both moments are bias-corrected to g, g^2).
    direction = [g / (g.abs() + 1e-8) for g in first_grads]
    greedy = -0.01 * sum(torch.sum(s * d) for s, d in zip(search_grads, direction))
    hypergradient = controller.hypergradient(grads=search_grads)["lr"]
    assert hypergradient == pytest.approx(float(greedy), rel=1e-9)


def test_a_tangent_keeps_mu_of_the_previous_steps() -> None:
    # z <- mu (1 - eta_t lam) z + delta_t for the log learning rate.
    deltas: list[list[torch.Tensor]] = []
    etas: list[float] = []

    def capture(step: int, controller: HypergradientController, model: torch.nn.Module) -> None:
        deltas.append([p.detach() - s for p, s in zip(model.parameters(), controller._start[0])])
        etas.append(controller.optimizer.param_groups[0]["lr"])

    controller, _ = unroll(mu=0.5, on_step=capture)
    expected = [torch.zeros_like(t) for t in deltas[0]]
    for eta, delta in zip(etas, deltas):
        keep = 0.5 * (1 - eta * START["weight_decay"])
        expected = [keep * e + d for e, d in zip(expected, delta)]
    for a, b in zip(controller.tangent("lr"), expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_exact_variant_needs_plain_sgd_and_a_graph() -> None:
    model = torch.nn.Linear(2, 1)
    schedule = LRSchedule(lr=LearnedValue(0.1, 1e-3, 1.0), total_steps=5)
    with pytest.raises(BadInputError, match="torch.optim.SGD only"):
        ExactHypergradientController(torch.optim.Adam(model.parameters()), schedule)
    with pytest.raises(BadInputError, match="nesterov=False"):
        sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        ExactHypergradientController(sgd, schedule)
    controller = ExactHypergradientController(torch.optim.SGD(model.parameters()), schedule)
    controller.before_train_step(0)
    model(torch.ones(3, 2)).sum().backward()
    with pytest.raises(BadInputError, match="create_graph=True"):
        controller.before_optimizer_step()
