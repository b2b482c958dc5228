"""The command line: `optuna-bigmodel run | worker | studies | best | report | probe`."""

from __future__ import annotations

import argparse

from optuna_bigmodel.cli._probe import add_probe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optuna-bigmodel",
        description="Tune large PyTorch models with Optuna and PyTorch Lightning.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_worker(commands)
    _add_studies(commands)
    _add_best(commands)
    _add_report(commands)
    add_probe(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run", help="run or resume the study a study file describes",
        description="Run (or resume) a study from its YAML file, then write its report.",
    )  # fmt: skip
    run.add_argument("spec", help="study file, e.g. studies/quickstart.yaml")
    run.add_argument("--storage", help="SQLAlchemy URL (default: SQLite in the run folder)")
    run.add_argument("--n-trials", type=int, help="total number of trials in the study")
    run.add_argument("--timeout", type=float, help="stop starting trials after SECONDS")
    run.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    run.add_argument("--sampler", help="Optuna sampler name: grid, random, tpe, cmaes, gp, ...")
    run.add_argument("--pruner", help="Optuna pruner name: none, median, hyperband, ...")
    run.add_argument("--seed", type=int, help="study seed")
    run.add_argument("--run-dir", help="folder of run artefacts (default: runs)")
    run.add_argument("--max-steps", type=int, help="training steps per trial")
    run.add_argument("--warm-start-study", metavar="NAME", help="queue best trials of this study")
    run.add_argument("--warm-start-storage", metavar="URL", help="its storage (default: ours)")
    run.add_argument("--warm-start-top", type=int, default=3, metavar="K", help="how many (3)")
    run.add_argument(
        "--allow-changed-space", action="store_true",
        help="continue a stored study even though its knobs, task or metric changed",
    )  # fmt: skip
    run.add_argument("--no-plot", action="store_true", help="do not write the report at the end")
    run.add_argument("--quiet", action="store_true", help="no per-trial progress lines")


def _add_worker(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker", help="join a running study as one more worker",
        description="Join a study started by `run` (on this or another machine, e.g. sharing "
        "one PostgreSQL) and run its trials until its budget is spent.",
    )  # fmt: skip
    worker.add_argument("--storage", required=True, help="SQLAlchemy URL of the study")
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--quiet", action="store_true", help="no per-trial progress lines")


def _add_studies(commands: argparse._SubParsersAction) -> None:
    studies = commands.add_parser("studies", help="list the studies in a storage")
    _add_target(studies, needs_study=False)


def _add_best(commands: argparse._SubParsersAction) -> None:
    best = commands.add_parser(
        "best", help="show the best trial: value, knobs and what it learned"
    )  # fmt: skip
    _add_target(best, needs_study=True)


def _add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report", help="write the study's report: one HTML page, plus each figure as a file",
        description="Write report.html (a summary in words and every figure, self-contained: it "
        "opens without a network) and each figure as its own HTML file. Works while the study "
        "is still running.",
    )  # fmt: skip
    _add_target(report, needs_study=True)
    report.add_argument(
        "--out", metavar="DIR",
        help="output folder (default: <run_dir>/<study>/report with a study file, "
        "./<study>/report with --storage)",
    )  # fmt: skip


def _add_target(parser: argparse.ArgumentParser, *, needs_study: bool) -> None:
    """A study is named by its spec file, or by --storage (and --study)."""
    parser.add_argument("spec", nargs="?", help="study file (gives storage and study name)")
    parser.add_argument("--storage", help="SQLAlchemy URL (default: from the study file)")
    if needs_study:
        parser.add_argument("--study", help="study name (default: from the study file)")
