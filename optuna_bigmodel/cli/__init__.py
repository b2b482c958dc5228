"""`optuna-bigmodel` and `python -m optuna_bigmodel`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.cli import _commands
from optuna_bigmodel.cli._parser import build_parser
from optuna_bigmodel.study import TrialsKeepFailing, WorkerFailed

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns 0, 1 (the study failed) or 2 (bad input, nothing was run)."""
    args = build_parser().parse_args(argv)
    command = getattr(_commands, args.command)
    try:
        return command(args)
    except BadInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return BadInputError.exit_code
    except (TrialsKeepFailing, WorkerFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the running trial was re-queued; run again to resume", file=sys.stderr)
        return 130
