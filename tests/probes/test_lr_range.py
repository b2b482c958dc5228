"""The LR range test against problems whose stability limit is known, and on a real task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optuna_bigmodel.probes import lr_range_test
from optuna_bigmodel.probes._lr_range import smooth, steepest_index, summarise
from optuna_bigmodel.tasks import resolve_task
from tests.probes._problems import (
    Arrays,
    LeastSquares,
    least_squares,
    same_state,
    snapshot,
    stability_limit,
)

STEPS, MIN_LR, MAX_LR = 100, 1e-6, 10.0
STEP_FACTOR = (MAX_LR / MIN_LR) ** (1 / (STEPS - 1))  # between consecutive rates


def _full_batch_test(condition: float, seed: int = 0, **kwargs):
    # One batch holding all the data: each update is plain gradient descent on the quadratic.
    x, y = least_squares(seed, condition)
    data = Arrays(x, y, batch_size=len(x))
    result = lr_range_test(LeastSquares(x.shape[1]), data, min_lr=MIN_LR, max_lr=MAX_LR,
                           num_steps=STEPS, device="cpu", **kwargs)  # fmt: skip
    return result, stability_limit(x, y)


def test_losses_are_gradient_descent_at_the_geometric_rates() -> None:
    x, y = least_squares(seed=0, condition=10.0)
    result, _ = _full_batch_test(10.0, smoothing=0.0)
    rates = MIN_LR * STEP_FACTOR ** np.arange(len(result.lrs))
    np.testing.assert_allclose(result.lrs, rates, rtol=1e-12)
    w, expected = torch.zeros(x.shape[1], dtype=torch.float64), []
    for rate in result.lrs:  # the same descent, written out: w <- w - lr * 2 x^T (x w - y) / n
        w = w - rate * 2 * x.T @ (x @ w - y) / len(x)
        expected.append(torch.mean((x @ w - y) ** 2).item())
    # Row order (shuffled) changes rounding, which the diverging last steps amplify.
    np.testing.assert_allclose(result.losses, expected, rtol=1e-8)
    assert result.initial_loss == pytest.approx(torch.mean(y**2).item(), rel=1e-12)


def test_isotropic_quadratic_bottoms_out_just_below_the_stability_limit() -> None:
    result, limit = _full_batch_test(condition=1.0, smoothing=0.0)
    # Below 2 / lambda every step shrinks the loss; above it every step grows it.
    assert limit / STEP_FACTOR <= result.min_loss_lr <= limit
    assert limit < result.diverged_lr < 10 * limit
    assert result.suggestion < limit


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("smoothing", [0.0, 0.9])
def test_ill_conditioned_quadratic_never_diverges_below_the_limit(
    seed: int, smoothing: float
) -> None:
    result, limit = _full_batch_test(condition=100.0, seed=seed, smoothing=smoothing)
    assert result.min_loss_lr >= limit / STEP_FACTOR  # no rate below the limit raises the loss
    # The unstable direction starts near zero, so the blow-up shows a few steps past the limit.
    assert limit < result.diverged_lr < 10 * limit
    assert "4x its lowest" in result.stop_reason
    assert result.suggestion < limit / 2


def test_markov_gpt_runs_and_leaves_the_module_exactly_as_it_was() -> None:
    built = resolve_task("markov_gpt").build({}, {"d_model": 16, "n_layers": 1},
                                             {"n_train": 256}, 0)  # fmt: skip
    module = built.module.eval()
    before, rng = snapshot(module), torch.get_rng_state()
    result = lr_range_test(module, built.datamodule, min_lr=1e-5, max_lr=10.0, num_steps=40,
                           device="cpu")  # fmt: skip
    assert same_state(module, before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not module.training and all(p.grad is None for p in module.parameters())
    assert min(result.losses) < result.initial_loss - 0.1  # it did train, on a copy
    assert 1e-5 <= result.suggestion <= result.min_loss_lr <= 10.0
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) <= 40


def test_figure_draws_the_curve_and_the_marks() -> None:
    result, _ = _full_batch_test(condition=10.0)
    figure = result.figure()
    curves = {trace.name: trace for trace in figure.data}
    assert list(curves["smoothed loss"].x) == list(result.lrs)
    assert list(curves["smoothed loss"].y) == list(result.smoothed)
    assert any(name.startswith("suggested (steepest)") for name in curves)
    assert figure.layout.xaxis.type == "log"


def test_a_non_finite_loss_stops_the_test() -> None:
    x, y = least_squares(seed=0, condition=1.0)
    module = LeastSquares(x.shape[1], dtype=torch.float32)
    data = Arrays(x.float(), y.float(), batch_size=len(x))
    result = lr_range_test(module, data, min_lr=1e-3, max_lr=1e30, num_steps=60,
                           diverge_factor=1e300, device="cpu")  # fmt: skip
    assert "the loss became" in result.stop_reason
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.diverged_lr == pytest.approx(1e-3 * (1e33 ** (1 / 59)) ** len(result.losses))


def test_smoothing_is_the_bias_corrected_moving_average() -> None:
    losses = [3.0, 1.0, 4.0, 1.0, 5.0]
    for k in range(len(losses)):
        weights = [0.8 ** (k - j) for j in range(k + 1)]  # written as a weighted mean
        mean = sum(w * v for w, v in zip(weights, losses[: k + 1], strict=True)) / sum(weights)
        assert smooth(losses, 0.8)[k] == pytest.approx(mean)


def test_steepest_point_of_a_known_curve() -> None:
    lrs = np.geomspace(1e-5, 1.0, 101)
    curve = 2 - np.tanh(2 * np.log(lrs / 3e-3)) + (lrs / 0.1) ** 2  # steepest fall at 3e-3
    assert lrs[steepest_index(lrs, curve)] == pytest.approx(3e-3, rel=0.13)


def test_min_loss_rule_is_a_tenth_of_the_lowest_loss_rate() -> None:
    result = summarise([1e-3, 1e-2, 1e-1], 5.0, [4.0, 2.0, 3.0], None, "ran all steps",
                       smoothing=0.0, rule="min_loss")  # fmt: skip
    assert result.rule == "min_loss" and result.suggestion == pytest.approx(1e-3)
    short = summarise([1e-3, 1e-2], 5.0, [2.0, 9.0], 1e-2, "diverged", smoothing=0.0,
                      rule="steepest")  # fmt: skip
    assert short.rule == "min_loss"  # too few points before the minimum for a slope


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"min_lr": 0.0}, "min_lr"),
        ({"min_lr": 1.0, "max_lr": 0.5}, "min_lr"),
        ({"num_steps": 1}, "num_steps"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"diverge_factor": 1.0}, "diverge_factor"),
        ({"rule": "valley"}, "rule"),
        ({"device": "banana"}, "device"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, named: str) -> None:
    x, y = least_squares(seed=0, condition=1.0)
    with pytest.raises(ValueError, match=named):
        lr_range_test(LeastSquares(x.shape[1]), Arrays(x, y, batch_size=8), **kwargs)
