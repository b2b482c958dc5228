"""Helpers for tests of optuna_bigmodel and of code built on it."""

from optuna_bigmodel.testing._postgres import postgres_bin_dir, running_postgres
from optuna_bigmodel.testing._tiny_task import build_tiny, tiny_task

__all__ = ["build_tiny", "postgres_bin_dir", "running_postgres", "tiny_task"]
