"""`optuna-bigmodel probe lr | batch-size`: what it prints and writes, and how bad input ends."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from optuna_bigmodel.cli import main
from optuna_bigmodel.probes import build_at_middle, largest_batch_size, lr_range_test
from optuna_bigmodel.spec import load_spec


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["probe", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_lr_prints_the_python_suggestion_and_writes_the_figure(
    write_spec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = write_spec()
    code, out, _ = _run(capsys, "lr", str(spec_path), "--num-steps", "40", "--max-lr", "10")
    assert code == 0
    # The tiny study's knobs: lr in [0.01, 0.5] on a log scale, offset in [0.0, 1.0, 2.0].
    assert f'"lr": {math.sqrt(0.01 * 0.5)}' in out and '"offset": 0.0' in out
    built, _ = build_at_middle(load_spec(spec_path))
    result = lr_range_test(built.module, built.datamodule, num_steps=40, max_lr=10, device="cpu")
    printed = re.search(r"suggested learning rate: (\S+) ", out)
    assert printed and float(printed.group(1)) == pytest.approx(result.suggestion, rel=1e-2)
    figure = tmp_path / "runs" / "tiny" / "probes" / "lr_range.html"
    assert f"wrote {figure}" in out and "plotly" in figure.read_text()[:100_000]


def test_lr_figure_goes_under_run_dir(write_spec, tmp_path: Path, capsys) -> None:
    code, out, _ = _run(capsys, "lr", str(write_spec()), "--num-steps", "10",
                        "--run-dir", str(tmp_path / "elsewhere"))  # fmt: skip
    assert code == 0 and (tmp_path / "elsewhere" / "tiny" / "probes" / "lr_range.html").is_file()


def test_batch_size_under_a_memory_limit(write_spec, capsys) -> None:
    spec_path = write_spec()
    code, out, _ = _run(capsys, "batch-size", str(spec_path), "--memory-limit", "2KiB")
    built, _ = build_at_middle(load_spec(spec_path))
    expected = largest_batch_size(built.module, built.datamodule, device="cpu",
                                  memory_limit_bytes=2048)  # fmt: skip
    assert code == 0 and expected.batch_size is not None
    assert f"largest batch size: {expected.batch_size} on cpu" in out


def test_batch_size_on_cpu_without_a_limit_says_it_tried_nothing(write_spec, capsys) -> None:
    code, out, _ = _run(capsys, "batch-size", str(write_spec()), "--max-batch-size", "300")
    assert code == 0
    assert "largest batch size: 300 (--max-batch-size), untried" in out and "--memory-limit" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["lr", "missing.yaml"], "cannot read the study file"),
        (["lr", "{spec}", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr 1 must be below"),
        (["batch-size", "{spec}", "--start", "64", "--max-batch-size", "8"], "below --start 64"),
        (["lr", "{bad}"], "sampler"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], message: str, write_spec, capsys
) -> None:
    paths = {"spec": str(write_spec()), "bad": str(write_spec("bad.yaml", sampler="nope"))}
    code, _, err = _run(capsys, *[arg.format(**paths) for arg in args])
    assert code == 2 and err.startswith("error:") and message in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["memory"], "invalid choice: 'memory'"),
        (["batch-size", "{spec}", "--memory-limit", "lots"], "expected a size such as"),
        (["lr", "{spec}", "--device", "banana"], "expected cpu, cuda"),
        (["lr", "{spec}", "--num-steps", "1"], "expected an integer >= 2"),
        (["lr", "{spec}", "--max-lr", "-3"], "expected a number > 0"),
    ],
)
def test_bad_arguments_exit_2_from_the_parser(
    args: list[str], message: str, write_spec, capsys
) -> None:
    spec = str(write_spec())
    with pytest.raises(SystemExit) as exit_:
        main(["probe", *[arg.format(spec=spec) for arg in args]])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
