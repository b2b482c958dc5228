"""What the quality benchmark tunes: per built-in task the model, data, size budget and run length,
the joint space every method searches, and the study file of each method.

The joint space is the same for every method:

- parameters: the optimiser family (momentum SGD or Adam) over mini-batches;
- structure: the model's gates under a size budget (``structure: sample`` for the outer searches,
  whose over-budget structures end before training at no cost; ``learn`` for ours);
- strategy: learning rate, its warm-up (a schedule) and weight decay.

The grid discretises each continuous knob to a few points; random search and TPE + Hyperband
sample the ranges; ours runs a few outer trials, a grid over what cannot take gradients (the
optimiser, the choice gates: ``structure: {mode: learn, choices: sample}``) and where the learned
rate starts (``lr_init``, three values half a decade apart), each pruned at half-time by the
median rule when it is behind the earlier ones, and learns the rest inside each run (unit gates
under the budget, rate, warm-up and weight decay, on a search split of 10% of the training data)
with the library's default inner settings (meta-rate, tangent decay, gate rate, discretisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METHODS = ("grid", "random", "tpe_hyperband", "ours")


@dataclass(frozen=True)
class TaskSetup:
    """One built-in task as the benchmark runs it.

    Args:
        name: The task's registry name.
        model: ``task.model`` settings (a small net, so that the grid fits the time limit).
        budget: The size budget: the largest fraction of the full model's weights a structure
            may keep.
        steps: Training steps of every trial (ours included).
        val_every: Steps between validations (what pruners see).
    """

    name: str
    model: dict[str, Any]
    budget: float
    steps: int
    val_every: int


@dataclass(frozen=True)
class Sizes:
    """How big a run is: the full benchmark or ``--quick``."""

    lr_points: int
    tune_decay_and_warmup: bool  # quick mode fixes both, for every method
    step_scale: float
    outer_share: float  # random / TPE get this fraction of the grid's compute
    # Ours' outer grid over where the learned rate starts: at and above the usual best constant
    # rate, since hypergradients bring it down (the short-horizon bias). Picked on pilot seeds
    # 100-104 over (3e-3, 3e-2) and (3e-2, 1e-1): see benchmarks/RESULTS.md.
    lr_starts: tuple[float, ...] = (1e-2, 3e-2, 1e-1)


FULL = Sizes(lr_points=3, tune_decay_and_warmup=True, step_scale=1.0, outer_share=0.35)
QUICK = Sizes(lr_points=2, tune_decay_and_warmup=False, step_scale=0.5, outer_share=0.35)

TASKS = {
    # One block of 2 heads, d_ff 64 in 4 channel groups, GELU / ReLU / SiLU: 24 structures,
    # 6 of them within 60% of the weights (the embeddings make most smaller ones impossible).
    "markov_gpt": TaskSetup(
        "markov_gpt", {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}, 0.6, 240, 40
    ),
    # Two hidden layers of 64 in 4 unit groups each, the second one skippable: 32 structures, 11
    # of them within 30% of the weights.
    "digits_mlp": TaskSetup("digits_mlp", {"hidden": 64, "depth": 2}, 0.3, 150, 30),
}

LR = (1e-3, 0.3)
WEIGHT_DECAY = (1e-5, 1e-2)
OPTIMIZERS = ["momentum", "adam"]


def steps_of(setup: TaskSetup, sizes: Sizes) -> tuple[int, int]:
    """Training steps and validation interval of every trial at these sizes."""
    val_every = max(1, round(setup.val_every * sizes.step_scale))
    return val_every * round(setup.steps / setup.val_every), val_every


def knobs(method: str, setup: TaskSetup, sizes: Sizes) -> dict[str, Any]:
    """The joint space's strategy knobs as ``method`` tunes them (structure is a section)."""
    steps, _ = steps_of(setup, sizes)
    warmup_high = steps // 3
    grid = method == "grid"
    if method == "ours":
        lr = {"mode": "learn", "low": LR[0], "high": LR[1]}
        decay = {"mode": "learn", "low": WEIGHT_DECAY[0], "high": WEIGHT_DECAY[1]}
        warmup = {"mode": "learn", "low": 0.0, "high": float(warmup_high)}
    else:
        lr = {"low": LR[0], "high": LR[1], "log": True, **_points(grid, sizes.lr_points)}
        decay = {"low": WEIGHT_DECAY[0], "high": WEIGHT_DECAY[1], "log": True, **_points(grid, 2)}
        warmup = {"low": 0.0, "high": float(warmup_high), **_points(grid, 2)}
    if not sizes.tune_decay_and_warmup:
        decay = {"mode": "fixed", "value": WEIGHT_DECAY[0]}
        warmup = {"mode": "fixed", "value": 0.0}
    declared = {"optimizer": {"choices": OPTIMIZERS}, "lr": lr, "weight_decay": decay,
                "warmup": warmup}  # fmt: skip
    if method == "ours":
        declared["lr_init"] = {"choices": list(sizes.lr_starts)}
    return {name: {"axis": "strategy", **knob} for name, knob in declared.items()}


def _points(grid: bool, n: int) -> dict[str, int]:
    return {"grid_points": n} if grid else {}


def study_file(
    method: str, setup: TaskSetup, sizes: Sizes, seed: int, folder: str, compute: int | None
) -> dict[str, Any]:
    """The study file of one method on one task and seed; ``compute`` caps random / TPE."""
    steps, val_every = steps_of(setup, sizes)
    name = f"{setup.name}-{method}-{seed}"
    spec: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "task": {"name": setup.name, "model": dict(setup.model)},
        "knobs": knobs(method, setup, sizes),
        "structure": {"mode": "sample", "budget": setup.budget},
        "storage": f"sqlite:///{folder}/{name}.db",
        "run_dir": folder,
        "trainer": {"max_steps": steps, "val_check_interval": val_every, "accelerator": "cpu",
                    "devices": 1, "progress_bar": False, "test_at_end": True},
        "sampler": {"name": "grid" if method in ("grid", "ours") else method.split("_")[0]},
        "pruner": {"name": "none"},
        "budget": {},
    }  # fmt: skip
    if method == "tpe_hyperband":
        spec["pruner"] = {"name": "hyperband", "kwargs": {
            "min_resource": val_every, "max_resource": steps, "reduction_factor": 3}}  # fmt: skip
    if method == "ours":  # unit gates learn, choices one run each; pruned at half-time if behind
        spec["structure"] = {"mode": "learn", "budget": setup.budget, "choices": "sample"}
        spec["pruner"] = {"name": "median", "kwargs": {
            "n_startup_trials": 1, "n_warmup_steps": steps // 2}}  # fmt: skip
    if method in ("random", "tpe_hyperband"):
        spec["budget"] = {"compute_steps": compute}
    return spec
