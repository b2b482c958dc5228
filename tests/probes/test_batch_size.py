"""The batch-size probe against brute-force scans, a hand count of memory, and injected OOMs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import torch

from optuna_bigmodel.probes import batch_memory, largest_batch_size, search_largest
from optuna_bigmodel.probes._steps import tiled
from optuna_bigmodel.tasks import resolve_task
from tests.probes._problems import (
    Arrays,
    NormedMLP,
    Projection,
    classification,
    same_state,
    snapshot,
)


def _counting(limit: int) -> tuple[list[int], Callable[[int], bool]]:
    calls: list[int] = []

    def fits(size: int) -> bool:
        calls.append(size)
        return size <= limit

    return calls, fits


@pytest.mark.parametrize("start", [1, 3, 16])
@pytest.mark.parametrize("cap", [100, 128, 1000])
def test_search_finds_what_a_scan_finds_in_fewer_tries(start: int, cap: int) -> None:
    for limit in range(0, cap + 20):
        calls, fits = _counting(limit)
        found = search_largest(fits, start, cap)
        scan = [size for size in range(start, cap + 1) if size <= limit]  # try every size
        assert found == (scan[-1] if scan else None), (start, cap, limit)
        assert len(set(calls)) == len(calls)  # no size tried twice
        scan_tries = min(len(scan) + 1, cap - start + 1)  # a scan stops at its first failure
        if limit - start >= 8:
            assert len(calls) < scan_tries


def test_cpu_estimate_counts_weights_grads_adam_state_and_saved_activations() -> None:
    d_in, d_out = 5, 3
    module = Projection(d_in, d_out)
    data = Arrays(torch.randn(10, d_in), batch_size=4)
    sizes = (1, 2, 7, 20)
    measured = [batch_memory(module, data, size, device="cpu") for size in sizes]
    # The backward pass of x @ W needs x; that of (x @ W)^2 needs x @ W: 4 bytes a float each.
    per_sample = 4 * (d_in + d_out)
    fixed = 4 * d_in * d_out * 4  # weight, its gradient, Adam's two moments
    for size, total in zip(sizes, measured, strict=True):
        assert fixed + per_sample * size <= total <= fixed + per_sample * size + 16  # + scalars


def _markov_tiny():
    return resolve_task("markov_gpt").build({}, {"d_model": 16, "n_layers": 1},
                                            {"n_train": 64}, 0)  # fmt: skip


def test_probe_under_a_memory_limit_matches_a_brute_force_scan() -> None:
    built = _markov_tiny()
    memory = {size: batch_memory(built.module, built.datamodule, size, device="cpu")
              for size in range(1, 60)}  # fmt: skip
    assert all(memory[s] < memory[s + 1] for s in range(1, 59))  # what the bisection assumes
    limit = (memory[37] + memory[38]) // 2
    before = snapshot(built.module)
    result = largest_batch_size(built.module, built.datamodule, device="cpu",
                                memory_limit_bytes=limit, max_batch_size=4096)  # fmt: skip
    scan = max(size for size, used in memory.items() if used <= limit)
    assert result.batch_size == scan == 37 and result.limited_by == "memory limit"
    assert len(result.tries) < scan + 1  # a scan from 1 needs 38 passes
    assert {t.batch_size: t.memory_bytes for t in result.tries if t.batch_size < 60}.items() <= (
        memory.items()
    )  # the probe measured what batch_memory measures
    assert same_state(built.module, before)


def test_memory_grows_linearly_with_the_batch() -> None:
    built = _markov_tiny()
    m = {s: batch_memory(built.module, built.datamodule, s, device="cpu") for s in (1, 2, 4, 8)}
    # Each sample adds the same activations, so doubling the batch doubles the increment.
    assert m[8] - m[4] == 2 * (m[4] - m[2]) == 4 * (m[2] - m[1]) > 0


def test_out_of_memory_is_caught_and_bisected() -> None:
    module = NormedMLP(oom_above=300)
    x, y = classification()
    data = Arrays(x, y, batch_size=16)
    before = snapshot(module)
    # Batch norm needs two samples to train on, hence start=2.
    result = largest_batch_size(module, data, device="cpu", start=2, memory_limit_bytes=2**40,
                                max_batch_size=10_000)  # fmt: skip
    assert result.batch_size == 300 and result.limited_by == "out of memory"
    failed = [t for t in result.tries if not t.fits]
    assert failed and all(t.memory_bytes is None and t.batch_size > 300 for t in failed)
    assert "301 does not" in result.note
    # Batch norm's running statistics moved in every pass, and are back.
    assert same_state(module, before) and all(p.grad is None for p in module.parameters())


def test_cpu_without_a_limit_returns_the_cap_and_says_so() -> None:
    x, y = classification()
    result = largest_batch_size(NormedMLP(), Arrays(x, y, batch_size=16), device="cpu", start=2,
                                max_batch_size=512)  # fmt: skip
    assert result.batch_size == 512 and result.tries == ()
    assert "no out-of-memory error" in result.note and "memory_limit_bytes" in result.note


def test_ends_of_the_range() -> None:
    x, y = classification()
    data = Arrays(x, y, batch_size=16)
    everything = largest_batch_size(NormedMLP(), data, device="cpu", start=2,
                                    memory_limit_bytes=2**40, max_batch_size=40)  # fmt: skip
    assert everything.batch_size == 40 and everything.limited_by == "max_batch_size"
    assert [t.batch_size for t in everything.tries] == [2, 4, 8, 16, 32, 40]
    nothing = largest_batch_size(NormedMLP(oom_above=4), data, device="cpu", start=8,
                                 memory_limit_bytes=2**40)  # fmt: skip
    assert nothing.batch_size is None and "not even batch size 8" in nothing.note


def test_tiled_batch_repeats_rows_in_order() -> None:
    x, y = tiled((torch.arange(3), {"y": torch.tensor([[1], [2], [3]])}), 7)
    assert x.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert y["y"].flatten().tolist() == [1, 2, 3, 1, 2, 3, 1]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"start": 0}, "start"),
        ({"max_batch_size": 2.5}, "max_batch_size"),
        ({"start": 8, "max_batch_size": 4}, "max_batch_size"),
        ({"memory_limit_bytes": -1}, "memory_limit_bytes"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, named: str) -> None:
    x, y = classification()
    with pytest.raises(ValueError, match=named):
        largest_batch_size(NormedMLP(), Arrays(x, y, batch_size=16), device="cpu", **kwargs)


_REAL_OOM = """
import gc
import torch
from optuna_bigmodel.probes import largest_batch_size
from tests.probes._problems import Arrays, NormedMLP
torch.cuda.set_per_process_memory_fraction(0.01)  # this process only: an OOM within seconds
module = NormedMLP()  # batch norm: start at 2
module.net[0] = torch.nn.Linear(4, 4096)
module.net[1] = torch.nn.BatchNorm1d(4096)
module.net[3] = torch.nn.Linear(4096, 3)
x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
result = largest_batch_size(module, Arrays(x, y, batch_size=16), device="cuda", start=2)
assert result.limited_by == "out of memory", result
assert 1 < result.batch_size < 65536, result
gc.collect()
assert torch.cuda.memory_allocated() == 0, torch.cuda.memory_allocated()  # all given back
print("largest", result.batch_size, len(result.tries), "tries")
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_cuda_out_of_memory() -> None:
    run = subprocess.run([sys.executable, "-c", _REAL_OOM], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
