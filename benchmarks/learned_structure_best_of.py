"""Learned gates, best of a few learned runs (a small search over the method's own settings),
against the exhaustive enumeration of ``learned_structure.py``.

``learned_structure.py`` compares one learned run per seed with every structure of at most 50% of
the weights (66 distinct models, 2000 steps each). The cost limit (0.3x the enumeration) leaves
room for several learned runs, so here each seed runs the learned method with each of a fixed,
pre-declared set of settings and keeps the run with the best final val loss: a selection made on
val loss exactly as the enumeration's best is. Every learned run's gradient evaluations count.

The set (``SETTINGS``): each activation candidate (GELU, ReLU, SiLU) fixed in both blocks for the
whole run while the unit gates (blocks, heads, channel groups) learn, under each unit relaxation
(sigmoid, hard-concrete); warm-up 0.1, discretisation at 0.3, gate_lr 0.05 (the library's defaults
when this was run; discretisation is at 0.1 by default since). Why the activation is not learned:
the softmax choice picks ReLU in every learned run (it favours the candidate with the largest
output while the weights are young; neither a delay nor picking by search loss changed that on the
pilot seeds), and which activation is best differs by seed. The set was fixed on pilot seeds 100
and 101 (benchmarks/RESULTS.md) before seeds 0, 1, 2 were run with it.

The enumeration's best val loss per seed is taken from the run recorded in benchmarks/RESULTS.md
(``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learned_structure.py --jobs 2 --verbose``; every
run is deterministic, a rerun in a fresh process gave the same losses), with its cost of
132 000 gradient evaluations per seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learned_structure_best_of.py [--jobs 1]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
import statistics

import learned_structure as base

# From the recorded learned_structure.py run: seed -> (best enumerated val loss, its structure).
ENUMERATED_BEST = base.ENUMERATED_BEST
ENUMERATION_COST = base.ENUMERATION_COST
ACTIVATIONS = ("gelu", "relu", "silu")
# (warmup_fraction, discretise_at, unit_relaxation, activation); gate_lr 0.05 throughout. The
# activation is fixed in both blocks for the whole run (``BilevelTuning(fixed_choices=...)``) while
# the unit gates learn: the softmax choice picks ReLU in every run (it favours the candidate with
# the largest output while the weights are young), so each candidate gets a run of its own.
SETTINGS = [
    (0.1, 0.3, relaxation, activation)
    for relaxation in ("sigmoid", "hard_concrete")
    for activation in ACTIVATIONS
]


def job(args: tuple[int, tuple[float, float, str, str], int]) -> tuple[int, tuple, base.Run]:
    seed, (warmup, discretise_at, relaxation, activation), steps = args
    base.setup_process()
    structure = {
        "mode": "learn", "budget": base.BUDGET, "gate_lr": 0.05, "warmup_fraction": warmup,
        "discretise_at": discretise_at, "unit_relaxation": relaxation,
    }  # fmt: skip
    n_blocks = base.MODEL["n_layers"]
    fixed = {f"net.blocks.{i}.mlp.activation": activation for i in range(n_blocks)}
    run, _ = base.run_learned(seed, steps, structure, {"fixed_choices": fixed})
    return seed, (warmup, discretise_at, relaxation, activation), run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    jobs = [(seed, s, args.steps) for seed in ENUMERATED_BEST for s in SETTINGS]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        results = list(pool.map(job, jobs))
    print("| seed | settings (warmup, discretise_at, units, activation) | learned | size | val "
          "| / best enumerated |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    ratios, costs, picks = [], [], []
    for seed, (best, best_shape) in ENUMERATED_BEST.items():
        runs = [(s, r) for k, s, r in results if k == seed]
        for settings, run in runs:
            print(f"| {seed} | {settings} | {run.label} | {run.weights / 27008:.3f} | "
                  f"{run.val_loss:.4f} | {run.val_loss / best:.4f} |")  # fmt: skip
        settings, pick = min(runs, key=lambda item: item[1].val_loss)
        cost = sum(run.evaluations for _, run in runs)
        ratios.append(pick.val_loss / best)
        picks.append(pick.val_loss)
        costs.append(cost / ENUMERATION_COST)
        print(f"| {seed} | **pick: {settings}** | {pick.label} | | **{pick.val_loss:.4f}** | "
              f"**{pick.val_loss / best:.4f}** (best enumerated {best:.4f}, {best_shape}; "
              f"cost {cost / ENUMERATION_COST:.3f}x) |")  # fmt: skip
    bests = [best for best, _ in ENUMERATED_BEST.values()]
    print(f"mean pick / best enumerated = {statistics.mean(ratios):.4f} (ratio of mean val "
          f"losses {statistics.mean(picks) / statistics.mean(bests):.4f}; worst seed "
          f"{max(ratios):.4f}); cost {statistics.mean(costs):.3f}x the enumeration")


if __name__ == "__main__":
    main()
