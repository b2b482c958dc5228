"""Which learning rate: Leslie Smith's range test, on a copy of the training run that is undone."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
import pytorch_lightning as pl
import torch

from optuna_bigmodel.probes._restore import restored
from optuna_bigmodel.probes._steps import only_optimizer
from optuna_bigmodel.probes._steps import probe_device
from optuna_bigmodel.probes._steps import step_loss
from optuna_bigmodel.probes._steps import training_batches


if TYPE_CHECKING:
    import plotly.graph_objects as go


RULES = ("steepest", "min_loss")
# The "min_loss" rule's fraction of the rate at the lowest loss (fastai's classic choice).
MIN_LOSS_FRACTION = 0.1


@dataclass(frozen=True)
class LRRangeResult:
    """The curve of an LR range test and the rate it suggests.

    Attributes:
        lrs: The learning rate of each update, increasing geometrically.
        losses: The training loss measured right after each update (on the next batch).
        smoothed: ``losses`` smoothed by a bias-corrected exponential moving average; like any
            average of the past it lags the raw losses by about ``1 / (1 - smoothing)`` steps.
        initial_loss: The loss before the first update.
        suggestion: The suggested learning rate (see ``rule``); ``None`` if the curve is too short.
        rule: How the suggestion was chosen: ``"steepest"`` (where the smoothed loss falls fastest
            per decade of rate) or ``"min_loss"`` (a tenth of ``min_loss_lr``).
        min_loss_lr: The rate at the lowest smoothed loss: above it, larger steps stopped helping.
        diverged_lr: The rate at which the loss diverged and the test stopped; ``None`` if it ran
            all steps without diverging.
        stop_reason: Why the test ended, in words.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    initial_loss: float
    suggestion: float | None
    rule: str
    min_loss_lr: float | None
    diverged_lr: float | None
    stop_reason: str

    def figure(self) -> go.Figure:
        """The loss against the learning rate (log axis), with the suggestion marked."""
        from optuna_bigmodel.probes._lr_figure import lr_range_figure

        return lr_range_figure(self)


def lr_range_test(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    num_steps: int = 100,
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
    rule: str = "steepest",
    device: str | torch.device | None = None,
) -> LRRangeResult:
    """Trains ``module`` for ``num_steps`` mini-batches at exponentially growing learning rates.

    The optimiser is the module's own (``configure_optimizers``, which must give exactly one;
    its schedulers are ignored), with every parameter group set to each step's rate. The test
    stops early once the smoothed loss exceeds ``diverge_factor`` times its lowest value, or the
    loss is not finite. Afterwards the module is exactly as before: weights, buffers, gradients,
    train/eval mode, device and the global torch random state are restored.

    Example:

        .. code-block:: python

            from optuna_bigmodel.probes import lr_range_test
            from optuna_bigmodel.tasks import resolve_task

            built = resolve_task("markov_gpt").build({}, {"d_model": 16}, {"n_train": 256}, 0)
            result = lr_range_test(built.module, built.datamodule, num_steps=60)
            print(result.suggestion, result.diverged_lr)
            result.figure().write_html("lr_range.html")

    Args:
        module: The model, with ``training_step`` returning the loss.
        datamodule: Its data; the test draws batches from ``train_dataloader``, epoch after epoch.
        min_lr: The rate of the first update.
        max_lr: The rate of the last update.
        num_steps: Updates (mini-batches) from ``min_lr`` to ``max_lr``.
        smoothing: The moving average's weight on the past, in ``[0, 1)``; ``0`` smooths nothing.
            Heavier smoothing quiets mini-batch noise but lags behind the loss.
        diverge_factor: Stop when the smoothed loss exceeds this multiple of its lowest value.
        rule: ``"steepest"``: the rate where the smoothed loss falls fastest against log rate,
            searched up to the lowest loss; ``"min_loss"``: a tenth of the rate at the lowest
            smoothed loss. ``"steepest"`` falls back to ``"min_loss"`` below 3 points.
        device: Where to run; ``None``: the GPU if there is one, else the CPU.

    Note:
        The steps run outside a Trainer: ``training_step`` is called directly (its ``self.log``
        calls go nowhere), without precision plugins, gradient clipping or accumulation, and
        ``configure_optimizers`` must not need ``self.trainer``. A datamodule that keeps its own
        random generator (for shuffling) has drawn from it. The suggestion is a starting point for
        a learned rate or the centre of a search range, not an optimum.

        ``diverged_lr`` is where the loss blew up, a few steps past the rate at which training
        became unstable: an unstable direction starts small and needs some steps to grow. On
        least squares with plain gradient descent, where rates above 2 / lambda_max diverge, it
        lands 4-8x above that limit, never below; the suggestion lands well below it.

        Lightning's own ``Tuner(trainer).lr_find`` runs through a Trainer instead (precision,
        clipping and hooks included) and also works on the built-in tasks' modules, which keep
        their rate in ``hparams.lr`` (it sets that to its suggestion unless ``update_attr=False``).
    """
    _check(min_lr, max_lr, num_steps, smoothing, diverge_factor, rule)
    rates = exponential_rates(min_lr, max_lr, num_steps)
    with restored(module, probe_device(device)) as model:
        run = _run(model, training_batches(datamodule), rates, smoothing, diverge_factor)
    return summarise(rates, *run, smoothing=smoothing, rule=rule)


def exponential_rates(min_lr: float, max_lr: float, num_steps: int) -> list[float]:
    """``num_steps`` rates from ``min_lr`` to ``max_lr``, each a constant factor above the last."""
    return np.geomspace(min_lr, max_lr, num_steps).tolist()


def smooth(losses: Sequence[float], smoothing: float) -> list[float]:
    """The bias-corrected exponential moving average of ``losses`` (as in Adam's moments).

    Each value averages the past only, so the curve lags; the online divergence check needs
    exactly that. (Smoothing forwards and backwards removes the lag, but lets the blow-up at the
    end leak far back into the curve and drags the marks to rates 10x too small.)
    """
    average, out = 0.0, []
    for step, loss in enumerate(losses, start=1):
        average = smoothing * average + (1 - smoothing) * loss
        out.append(average / (1 - smoothing**step))
    return out


def steepest_index(lrs: Sequence[float], smoothed: Sequence[float]) -> int | None:
    """Where ``smoothed`` falls fastest per unit of ``log(lr)``, up to its minimum."""
    end = int(np.argmin(smoothed)) + 1
    if end < 3:
        return None
    slopes = np.gradient(np.asarray(smoothed[:end]), np.log(lrs[:end]))
    return int(np.argmin(slopes))


def summarise(
    rates: Sequence[float],
    initial: float,
    losses: Sequence[float],
    diverged_lr: float | None,
    stop_reason: str,
    *,
    smoothing: float,
    rule: str,
) -> LRRangeResult:
    """The result of a test whose first updates at ``rates`` gave ``losses``."""
    lrs, smoothed = tuple(rates[: len(losses)]), smooth(losses, smoothing)
    min_loss_lr = lrs[int(np.argmin(smoothed))] if smoothed else None
    steepest = steepest_index(lrs, smoothed) if rule == "steepest" and smoothed else None
    if steepest is not None:
        suggestion: float | None = lrs[steepest]
    else:
        rule = "min_loss"
        suggestion = None if min_loss_lr is None else MIN_LOSS_FRACTION * min_loss_lr
    return LRRangeResult(
        lrs, tuple(losses), tuple(smoothed), initial, suggestion, rule, min_loss_lr, diverged_lr,
        stop_reason,
    )  # fmt: skip


def _run(
    model: pl.LightningModule,
    batches: Iterator[Any],
    rates: Sequence[float],
    smoothing: float,
    diverge_factor: float,
) -> tuple[float, list[float], float | None, str]:
    """Initial loss, the loss after each update, the rate it diverged at, why it stopped."""
    losses: list[float]
    optimizer, device = only_optimizer(model), next(model.parameters()).device
    initial = step_loss(model, next(batches), device)
    loss, losses = initial, []
    for rate in rates:
        _update(model, optimizer, loss, rate)
        loss = step_loss(model, next(batches), device)
        if not torch.isfinite(loss):
            return initial.item(), losses, rate, f"the loss became {loss.item()} at lr {rate:.3g}"
        losses.append(loss.item())
        smoothed = smooth(losses, smoothing)
        if smoothed[-1] > diverge_factor * min(smoothed):
            why = f"the smoothed loss passed {diverge_factor:g}x its lowest at lr {rate:.3g}"
            return initial.item(), losses, rate, why
    return initial.item(), losses, None, "ran all steps without diverging"


def _update(
    model: pl.LightningModule, optimizer: torch.optim.Optimizer, loss: torch.Tensor, rate: float
) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
    # All of the module's gradients, not only the optimiser's: parameters it does not step
    # (e.g. structure gates with their own optimiser) must not pile up gradients either.
    model.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _check(
    min_lr: float, max_lr: float, num_steps: int, smoothing: float, factor: float, rule: str
) -> None:
    if not (isinstance(min_lr, (int, float)) and 0 < min_lr < max_lr < math.inf):
        raise ValueError(f"min_lr, max_lr: expected 0 < min_lr < max_lr, got {min_lr}, {max_lr}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps: expected an integer >= 2, got {num_steps!r}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing: expected a number in [0, 1), got {smoothing!r}")
    if not factor > 1:
        raise ValueError(f"diverge_factor: expected a number > 1, got {factor!r}")
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {', '.join(map(repr, RULES))}, got {rule!r}")
