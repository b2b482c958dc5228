"""Wording shared by every input check, so all bad-input messages read the same way.

Knobs are the lowest layer that checks user input, so the spec parser and the sampler and pruner
factories borrow these helpers from here rather than each keeping its own copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import difflib
from typing import Any


_KIND_NAMES: dict[type, str] = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
    type(None): "null",
}

# Long values (a whole pasted mapping) would bury the rest of the message.
_MAX_SHOWN = 80


def show(value: Any) -> str:
    """Return ``repr(value)``, shortened so that a message stays one readable line.

    Tuples show as lists: knobs store lists as tuples, but the user wrote a list.
    """
    text = repr(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def kind_of(value: Any) -> str:
    """Name the type of ``value`` in the words of a YAML file rather than of Python."""
    if isinstance(value, Mapping):
        return "a mapping"
    return _KIND_NAMES.get(type(value), f"a {type(value).__name__}")


def got(value: Any, expected: str, *, with_kind: bool = True) -> str:
    """Say what was given and what is expected, e.g. ``got 'ten' (a string); expected ...``."""
    kind = f" ({kind_of(value)})" if with_kind else ""
    return f"got {show(value)}{kind}; expected {expected}"


def did_you_mean(word: Any, options: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the nearest option, or ``""`` if none is near."""
    matches = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def unknown(what: str, word: Any, options: Iterable[str]) -> str:
    """Say that ``word`` is not a known ``what``, suggest the nearest option and list them all."""
    listed = list(options)
    allowed = ", ".join(listed) or "none"
    hint = did_you_mean(word, listed)
    return f"got unknown {what} {show(word)}{hint}; expected one of: {allowed}"


def one_of(options: Iterable[Any]) -> str:
    """List the allowed values as ``one of 'a', 'b', 'c'``."""
    return "one of " + ", ".join(repr(option) for option in options)


def is_number(value: Any) -> bool:
    """Tell real numbers from booleans, which Python counts as integers but users never mean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    """Tell integers from booleans (``True`` is an ``int`` in Python, never in a study file)."""
    return isinstance(value, int) and not isinstance(value, bool)
