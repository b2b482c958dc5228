"""`optuna-bigmodel probe lr | batch-size SPEC`: which learning rate, which batch size."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.probes import LRRangeResult, build_at_middle, largest_batch_size, lr_range_test
from optuna_bigmodel.spec import StudySpec, load_spec
from optuna_bigmodel.tasks import TaskBuild


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9}
_SIZE_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30})


def add_probe(commands: argparse._SubParsersAction) -> None:
    """The ``probe`` command and its two probes, ``lr`` and ``batch-size``."""
    probe = commands.add_parser(
        "probe", help="which learning rate, which batch size: quick probes before a study",
        description="Build the study's model with each sampled knob at the middle of its range "
        "(or its first choice) and probe it; the model is left untouched.",
    )  # fmt: skip
    probes = probe.add_subparsers(dest="probe", required=True, metavar="PROBE")
    _add_lr(probes)
    _add_batch_size(probes)


def probe(args: argparse.Namespace) -> int:
    """Runs the probe ``args.probe`` on the model of the study file ``args.spec``."""
    _check_ranges(args)
    spec = load_spec(args.spec)
    device = args.device or _from_accelerator(spec.trainer.accelerator)
    built, params = build_at_middle(spec)
    print(f"{spec.task.name} built with knobs at their middle / first choice: "
          f"{json.dumps(params, default=str)}")  # fmt: skip
    if args.probe == "lr":
        return _probe_lr(args, spec, built, device)
    return _probe_batch_size(args, built, device)


def _add_lr(probes: argparse._SubParsersAction) -> None:
    lr = probes.add_parser(
        "lr", help="LR range test: loss against an exponentially growing learning rate",
        description="Train for NUM_STEPS mini-batches with the rate growing from MIN_LR to MAX_LR, "
        "stop when the loss diverges, print the suggested rate and write the curve to "
        "<run_dir>/<study>/probes/lr_range.html.",
    )  # fmt: skip
    lr.add_argument("spec", help="study file, e.g. studies/quickstart.yaml")
    lr.add_argument("--min-lr", type=_positive_float, default=1e-6, help="first rate (1e-6)")
    lr.add_argument("--max-lr", type=_positive_float, default=1.0, help="last rate (1.0)")
    lr.add_argument("--num-steps", type=_int_at_least(2), default=100, help="updates (100)")
    _add_common(lr)


def _add_batch_size(probes: argparse._SubParsersAction) -> None:
    size = probes.add_parser(
        "batch-size", help="largest training batch that fits in GPU memory",
        description="Double the batch until a training step runs out of memory, then bisect. "
        "On the CPU there is no out-of-memory error: give --memory-limit to search under one.",
    )  # fmt: skip
    size.add_argument("spec", help="study file, e.g. studies/quickstart.yaml")
    size.add_argument("--start", type=_int_at_least(1), default=1, help="first size tried (1)")
    size.add_argument(
        "--max-batch-size", type=_int_at_least(1), default=65536, help="largest size tried (65536)"
    )
    size.add_argument(
        "--memory-limit", type=_bytes, metavar="SIZE",
        help="count a step needing more than SIZE (e.g. 2GiB, 512MB, 1000000) as not fitting",
    )  # fmt: skip
    _add_common(size)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", type=_device,
        help="cpu, cuda, cuda:1, ... (default: cpu if the study's trainer.accelerator says cpu, "
        "else the GPU if there is one)",
    )  # fmt: skip
    parser.add_argument("--run-dir", help="folder of run artefacts (default: the study's run_dir)")


def _probe_lr(
    args: argparse.Namespace, spec: StudySpec, built: TaskBuild, device: str | None
) -> int:
    sweep = {"min_lr": args.min_lr, "max_lr": args.max_lr, "num_steps": args.num_steps}
    result = lr_range_test(built.module, built.datamodule, device=device, **sweep)
    print(_lr_line(result) + _against_knob(spec, result.suggestion))
    folder = os.path.join(args.run_dir or spec.run_dir, spec.name, "probes")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "lr_range.html")
    result.figure().write_html(path, include_plotlyjs=True)  # one file that opens offline
    print(f"wrote {path}")
    return 0


def _probe_batch_size(args: argparse.Namespace, built: TaskBuild, device: str | None) -> int:
    search = {"start": args.start, "max_batch_size": args.max_batch_size}
    limit = args.memory_limit
    result = largest_batch_size(
        built.module, built.datamodule, device=device, memory_limit_bytes=limit, **search
    )
    if not result.tries:
        print(
            f"largest batch size: {result.batch_size} (--max-batch-size), untried: on "
            f"{result.device} there is no out-of-memory error to find; give --memory-limit SIZE"
        )
    else:
        print(f"largest batch size: {result.batch_size} on {result.device}: {result.note}")
    return 0


def _check_ranges(args: argparse.Namespace) -> None:
    # Before the model is built: a typo should not cost a build.
    if args.probe == "lr" and args.min_lr >= args.max_lr:
        raise BadInputError(f"--min-lr {args.min_lr:g} must be below --max-lr {args.max_lr:g}")
    if args.probe == "batch-size" and args.max_batch_size < args.start:
        raise BadInputError(f"--max-batch-size {args.max_batch_size} is below --start {args.start}")


def _lr_line(result: LRRangeResult) -> str:
    if result.suggestion is None:
        return f"no suggested learning rate: too few points ({result.stop_reason})"
    how = {"steepest": "steepest fall of the smoothed loss", "min_loss": "a tenth of the lowest"}
    if result.diverged_lr is None:
        diverged = f"no divergence up to {result.lrs[-1]:.3g}"
    else:
        diverged = f"diverged at {result.diverged_lr:.3g}"
    return (f"suggested learning rate: {result.suggestion:.3g} ({how[result.rule]}; "
            f"lowest loss at {result.min_loss_lr:.3g}, {diverged})")  # fmt: skip


def _against_knob(spec: StudySpec, suggestion: float | None) -> str:
    for knob in spec.knobs:
        low, high = knob.low, knob.high
        if knob.name == "lr" and low is not None and high is not None and suggestion is not None:
            where = "inside" if low <= suggestion <= high else "OUTSIDE"
            return f"; {where} the lr knob's range [{low:g}, {high:g}]"
    return ""  # no lr knob with a range


def _from_accelerator(accelerator: str) -> str | None:
    # None lets the probe take the GPU when there is one, as Lightning's "auto" would.
    return "cpu" if accelerator == "cpu" or not torch.cuda.is_available() else None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _device(text: str) -> str:
    try:
        where = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:1, ..., got {text!r}") from None
    if where.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees no CUDA device here")
    return text


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text.strip()) or int(text) < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return int(text)

    return parse


def _bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    size = int(float(match.group(1)) * unit) if match and unit else 0
    if size < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 2GiB, 512MB or 1000000 (bytes), got {text!r}"
        )
    return size
