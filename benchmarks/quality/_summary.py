"""From trial records to what the issue asks: best-so-far test loss against compute, the final
table, and the two targets (ours within 1% of the grid's best at <= 25% of its compute; ours
better than TPE + Hyperband at equal compute)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import statistics

from benchmarks.quality._run import MethodRun

WITHIN = 1.01  # ours' test loss may be at most 1% above the grid's
COMPUTE_SHARE = 0.25  # ... using at most this fraction of the grid's compute


def best_so_far(run: MethodRun) -> list[tuple[int, float]]:
    """(compute spent, test loss of the best trial by val so far) after each trial that changed it.

    The pick is by validation loss, as a user would pick; the test loss is never looked at to
    choose, so it is an honest estimate of the picked model.
    """
    points, spent, best_val = [], 0, float("inf")
    for trial in run.trials:
        spent += trial.compute
        if trial.val is not None and trial.test is not None and trial.val < best_val:
            best_val = trial.val
            points.append((spent, trial.test))
    return points


def best_test_at(run: MethodRun, compute: float) -> float | None:
    """The best-so-far test loss once ``compute`` steps are spent (None: nothing finished yet)."""
    value = None
    for spent, test in best_so_far(run):
        if spent > compute:
            break
        value = test
    return value


def final_test(run: MethodRun) -> float | None:
    curve = best_so_far(run)
    return curve[-1][1] if curve else None


@dataclass(frozen=True)
class SeedRow:
    """One task and seed: each method's final best test loss and compute, and TPE's at ours'."""

    task: str
    seed: int
    optimum: float | None
    grid: float
    grid_compute: int
    random: float | None
    random_compute: int
    tpe: float | None
    tpe_compute: int
    ours: float
    ours_compute: int
    tpe_at_ours: float | None  # TPE + Hyperband's best-so-far test loss at ours' compute
    random_at_ours: float | None

    @property
    def ours_vs_grid(self) -> float:
        return self.ours / self.grid

    @property
    def ours_share(self) -> float:
        return self.ours_compute / self.grid_compute


def seed_rows(runs: Sequence[MethodRun]) -> list[SeedRow]:
    by_key = {(r.task, r.seed, r.method): r for r in runs}
    rows = []
    for task, seed in sorted({(r.task, r.seed) for r in runs}):
        grid, rand, tpe, ours = (by_key[task, seed, m] for m in
                                 ("grid", "random", "tpe_hyperband", "ours"))  # fmt: skip
        rows.append(SeedRow(
            task, seed, grid.optimum, final_test(grid), grid.compute, final_test(rand),
            rand.compute, final_test(tpe), tpe.compute, final_test(ours), ours.compute,
            best_test_at(tpe, ours.compute), best_test_at(rand, ours.compute),
        ))  # fmt: skip
    return rows


@dataclass(frozen=True)
class TaskVerdict:
    """The targets on one task, over its seeds."""

    task: str
    seeds: int
    ours_vs_grid: float  # mean of ours / grid
    ours_vs_grid_range: tuple[float, float]
    ours_share: float  # mean fraction of the grid's compute ours used
    ours_mean: float
    tpe_at_ours_mean: float | None  # None: TPE finished no trial within ours' compute in a seed
    tpe_at_ours_range: tuple[float, float] | None
    ours_range: tuple[float, float]

    @property
    def reaches_grid(self) -> bool:
        return self.ours_vs_grid <= WITHIN and self.ours_share <= COMPUTE_SHARE

    @property
    def beats_tpe(self) -> bool:
        return self.tpe_at_ours_mean is None or self.ours_mean < self.tpe_at_ours_mean


def verdicts(rows: Sequence[SeedRow]) -> list[TaskVerdict]:
    out = []
    for task in sorted({r.task for r in rows}):
        mine = [r for r in rows if r.task == task]
        ratios = [r.ours_vs_grid for r in mine]
        ours = [r.ours for r in mine]
        tpe = [r.tpe_at_ours for r in mine]
        known = None if any(t is None for t in tpe) else [float(t) for t in tpe]
        out.append(TaskVerdict(
            task, len(mine), statistics.fmean(ratios), (min(ratios), max(ratios)),
            statistics.fmean(r.ours_share for r in mine), statistics.fmean(ours),
            None if known is None else statistics.fmean(known),
            None if known is None else (min(known), max(known)), (min(ours), max(ours)),
        ))  # fmt: skip
    return out


def markdown(rows: Sequence[SeedRow], found: Sequence[TaskVerdict]) -> str:
    """The per-seed table and the verdict table, as RESULTS.md shows them."""
    lines = [
        "| task | seed | grid best test (compute) | random (compute) | TPE+Hyperband (compute) "
        "| ours (compute, share of grid) | ours / grid | TPE+HB at ours' compute "
        "| random at ours' compute | ours excess over optimum |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        excess = "" if r.optimum is None else f"{r.ours - r.optimum:.4f}"
        lines.append(
            f"| {r.task} | {r.seed} | {r.grid:.4f} ({r.grid_compute}) | {_f(r.random)} "
            f"({r.random_compute}) | {_f(r.tpe)} ({r.tpe_compute}) | {r.ours:.4f} "
            f"({r.ours_compute}, {r.ours_share:.3f}) | {r.ours_vs_grid:.4f} | "
            f"{_f(r.tpe_at_ours)} | {_f(r.random_at_ours)} | {excess} |"
        )
    lines += ["", "| task | seeds | ours / grid, mean (range) | ours' compute / grid's | "
              "within 1% at <= 25%? | ours mean (range) | TPE+HB at ours' compute, mean (range) "
              "| ours better? |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for v in found:
        tpe = "none finished" if v.tpe_at_ours_mean is None else (
            f"{v.tpe_at_ours_mean:.4f} ({v.tpe_at_ours_range[0]:.4f}-{v.tpe_at_ours_range[1]:.4f})")  # fmt: skip
        lines.append(
            f"| {v.task} | {v.seeds} | {v.ours_vs_grid:.4f} ({v.ours_vs_grid_range[0]:.4f}-"
            f"{v.ours_vs_grid_range[1]:.4f}) | {v.ours_share:.3f} | "
            f"{'yes' if v.reaches_grid else 'NO'} | {v.ours_mean:.4f} ({v.ours_range[0]:.4f}-"
            f"{v.ours_range[1]:.4f}) | {tpe} | {'yes' if v.beats_tpe else 'NO'} |"
        )
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
