"""Errors raised for bad input: the CLI turns every one of them into exit code 2."""

from __future__ import annotations


class BadInputError(ValueError):
    """Input from the user (a study file, a flag, a URL, an import path) that cannot be used.

    The message names where the input came from, the bad value and what is allowed.
    """

    exit_code = 2
