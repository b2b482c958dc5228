"""Learned learning rate against an 11-point log grid of fixed rates (Optuna GridSampler).

Task ``digits_mlp`` (the default 64-64 MLP on scikit-learn's digits), plain SGD (or SGD with
momentum 0.9), a plain torch loop over the task's own data and initial weights. For each seed:

- grid: 11 training runs, one per rate on a log grid over [1e-3, 1] (a tenth of that with
  momentum), driven by Optuna's ``GridSampler``; the trial with the best validation loss is the
  grid's pick, and the best test loss of any of the 11 runs is shown too (an oracle);
- learned: one run whose rate starts at the grid's geometric middle and is learned by
  ``HypergradientController`` (mu 0.99, the library defaults; no search over meta-rates);
- greedy: the same with mu = 0 (Baydin et al. 2018), for comparison.

Both sides train the weights on the train split and take their tuning decisions from the val split
(the grid picks by val loss; hypergradients read val batches of the training batch size). The
number compared is the test loss at the end. Gradient evaluations count every forward+backward
pass: one per training step, one per search batch; evaluating a whole split (forward only) is
not counted, on either side.

    .venv/bin/python benchmarks/learned_lr.py [--seeds 5] [--steps 1000] [--optimizer sgd] [--quick]
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
import math
import statistics

import optuna
import torch
import torch.nn.functional as F

from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule
from optuna_bigmodel.tasks import resolve_task


BATCH = 64
MOMENTUM = {"sgd": 0.0, "momentum": 0.9}
Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Setting:
    """The training set-up both sides share."""

    steps: int
    momentum: float
    grid: list[float]


def log_grid(optimizer: str) -> list[float]:
    """11 rates, log-spaced over [1e-3, 1] for SGD and over [1e-4, 0.1] with momentum."""
    scale = 0.1 if MOMENTUM[optimizer] else 1.0
    return [scale * 10 ** (-3 + 0.3 * i) for i in range(11)]


@dataclass
class Run:
    """What one way of choosing the rate gives: its rate, its losses and its cost."""

    lr: float
    val_loss: float
    test_loss: float
    gradient_evaluations: int


def load(seed: int) -> tuple[torch.nn.Module, dict[str, Split]]:
    """The task's initial network for ``seed`` and its train / val / test splits as tensors."""
    built = resolve_task("digits_mlp").build({}, {}, {}, seed)
    datamodule = built.datamodule
    datamodule.setup("fit")
    loaders = {
        "train": datamodule.train_dataloader(),
        "val": datamodule.val_dataloader(),
        "test": datamodule.test_dataloader(),
    }
    splits = {}
    for name, loader in loaders.items():
        xs, ys = zip(*loader)
        splits[name] = (torch.cat(xs), torch.cat(ys))
    return built.module.net, splits


def batch_indices(n: int, steps: int, seed: int) -> list[torch.Tensor]:
    """``steps`` mini-batches of an ``n``-sample split, reshuffled each epoch."""
    generator = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=generator)
        out += [perm[i : i + BATCH] for i in range(0, n - BATCH + 1, BATCH)]
    return out[:steps]


def loss_on(net: torch.nn.Module, split: Split, index: torch.Tensor | None = None) -> torch.Tensor:
    x, y = split if index is None else (split[0][index], split[1][index])
    return F.cross_entropy(net(x), y)


def evaluate(net: torch.nn.Module, splits: dict[str, Split], lr: float, evaluations: int) -> Run:
    with torch.no_grad():
        val, test = float(loss_on(net, splits["val"])), float(loss_on(net, splits["test"]))
    return Run(lr, val, test, evaluations)


def train_fixed(
    net0: torch.nn.Module, splits: dict[str, Split], lr: float, setting: Setting, seed: int
) -> Run:
    """One run at a fixed rate: ``steps`` gradient evaluations."""
    net = copy.deepcopy(net0)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=setting.momentum)
    for index in batch_indices(len(splits["train"][1]), setting.steps, seed):
        optimizer.zero_grad()
        loss_on(net, splits["train"], index).backward()
        optimizer.step()
    return evaluate(net, splits, lr, setting.steps)


def train_learned(
    net0: torch.nn.Module, splits: dict[str, Split], setting: Setting, seed: int, mu: float
) -> Run:
    """One run whose rate is learned on val batches: ``2 * steps`` gradient evaluations.

    The rate starts at the grid's geometric middle and is clipped to the grid's range.
    """
    net = copy.deepcopy(net0)
    low, high = setting.grid[0], setting.grid[-1]
    init = math.sqrt(low * high)
    optimizer = torch.optim.SGD(net.parameters(), lr=init, momentum=setting.momentum)
    schedule = LRSchedule(lr=LearnedValue(init, low, high), total_steps=setting.steps)
    controller = HypergradientController(optimizer, schedule, mu=mu)
    train = batch_indices(len(splits["train"][1]), setting.steps, seed)
    search = batch_indices(len(splits["val"][1]), setting.steps, seed + 10_000)
    evaluations = 0
    for step, (index, search_index) in enumerate(zip(train, search)):
        controller.before_train_step(step)
        optimizer.zero_grad()
        loss = loss_on(net, splits["train"], index)
        loss.backward()
        optimizer.step()
        controller.after_train_step(loss)
        controller.on_search_batch(loss_on(net, splits["val"], search_index))
        evaluations += 2
    if controller.events:
        print(f"    restores: {controller.events}")
    return evaluate(net, splits, controller.current_values()["lr"], evaluations)


def grid_search(
    net0: torch.nn.Module, splits: dict[str, Split], setting: Setting, seed: int
) -> tuple[Run, float]:
    """The 11-point grid through Optuna's GridSampler: its pick (best val loss), the best test
    loss of any grid point, and (in the pick) the gradient evaluations of all 11 runs."""
    runs: list[Run] = []
    low, high = setting.grid[0], setting.grid[-1]

    def objective(trial: optuna.Trial) -> float:
        runs.append(train_fixed(net0, splits, trial.suggest_float("lr", low, high), setting, seed))
        trial.set_user_attr("test_loss", runs[-1].test_loss)
        return runs[-1].val_loss if math.isfinite(runs[-1].val_loss) else math.inf

    sampler = optuna.samplers.GridSampler({"lr": setting.grid}, seed=seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=len(setting.grid))
    best = study.best_trial
    total = sum(run.gradient_evaluations for run in runs)
    oracle = min(run.test_loss for run in runs if math.isfinite(run.test_loss))
    return Run(best.params["lr"], best.value, best.user_attrs["test_loss"], total), oracle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--optimizer", choices=sorted(MOMENTUM), default="sgd")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 400 steps (~30 s)")
    args = parser.parse_args()
    seeds, steps = (2, 400) if args.quick else (args.seeds, args.steps)
    setting = Setting(steps, MOMENTUM[args.optimizer], log_grid(args.optimizer))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    print(
        f"digits_mlp, {args.optimizer}, {steps} steps, {seeds} seeds, grid "
        f"{setting.grid[0]:g}..{setting.grid[-1]:g}; learned and greedy start at "
        f"{math.sqrt(setting.grid[0] * setting.grid[-1]):.4g}"
    )
    print(
        "| seed | grid pick lr | its test | best grid test | learned lr | learned test "
        "| / pick | / best | greedy lr | greedy test |"
    )
    print("| --- " * 10 + "|")
    rows = []
    for seed in range(seeds):
        net0, splits = load(seed)
        grid, oracle = grid_search(net0, splits, setting, seed)
        learned = train_learned(net0, splits, setting, seed, mu=0.99)
        greedy = train_learned(net0, splits, setting, seed, mu=0.0)
        rows.append((grid, oracle, learned, greedy))
        print(
            f"| {seed} | {grid.lr:.4f} | {grid.test_loss:.4f} | {oracle:.4f} | {learned.lr:.4f} "
            f"| {learned.test_loss:.4f} | {learned.test_loss / grid.test_loss:.3f} "
            f"| {learned.test_loss / oracle:.3f} | {greedy.lr:.4f} | {greedy.test_loss:.4f} |"
        )
    summarise(rows)


def summarise(rows: list[tuple[Run, float, Run, Run]]) -> None:
    """Means over seeds, the worst seed, the cost ratio and whether the target is met."""
    grid_test = statistics.mean(row[0].test_loss for row in rows)
    oracle_test = statistics.mean(row[1] for row in rows)
    learned_test = statistics.mean(row[2].test_loss for row in rows)
    greedy_test = statistics.mean(row[3].test_loss for row in rows)
    worst = max(row[2].test_loss / row[0].test_loss for row in rows)
    learned_cost = sum(row[2].gradient_evaluations for row in rows)
    grid_cost = sum(row[0].gradient_evaluations for row in rows)
    print(
        f"mean test loss: grid pick {grid_test:.4f}, best grid point {oracle_test:.4f}, "
        f"learned {learned_test:.4f}, greedy {greedy_test:.4f}"
    )
    print(
        f"learned / grid pick: mean {learned_test / grid_test:.3f}, worst seed {worst:.3f}; "
        f"learned / best grid point: {learned_test / oracle_test:.3f}; "
        f"greedy / grid pick: {greedy_test / grid_test:.3f}"
    )
    cost = learned_cost / grid_cost
    print(
        f"gradient evaluations learned / grid: {cost:.3f} ({learned_cost} vs {grid_cost}; "
        "no meta-rate search: library defaults mu 0.99, meta_lr 0.02, Adam)"
    )
    met = learned_test <= 1.01 * grid_test and cost <= 0.3
    print(
        "target (mean test loss within 1% of the grid pick's at <= 0.3x its evaluations): "
        f"{'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
