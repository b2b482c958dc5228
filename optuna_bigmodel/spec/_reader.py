"""Typed reads of a parsed study file, each failing with the file, line, key path and value."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
from typing import Any

from optuna_bigmodel.knobs._messages import did_you_mean
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import is_int
from optuna_bigmodel.knobs._messages import is_number
from optuna_bigmodel.knobs._messages import one_of
from optuna_bigmodel.knobs._messages import unknown
from optuna_bigmodel.spec._errors import KeyPath
from optuna_bigmodel.spec._errors import SpecError


# What JSON can store, so that a spec survives the study's user attributes.
_SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Reader:
    """Where the data came from (a file and its key lines, or a mapping) and how to complain."""

    source: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def error(self, path: KeyPath, detail: str) -> SpecError:
        """A :class:`SpecError` at ``path``, on the line of ``path`` or of its nearest parent."""
        for depth in range(len(path), -1, -1):
            if path[:depth] in self.lines:
                return SpecError(self.source, path, detail, self.lines[path[:depth]])
        return SpecError(self.source, path, detail)

    def wrong(self, path: KeyPath, value: Any, expected: str) -> SpecError:
        """A :class:`SpecError` saying what ``value`` is and what was expected instead."""
        return self.error(path, got(value, expected))

    def mapping(self, value: Any, path: KeyPath, expected: str) -> Mapping[str, Any]:
        """``value`` as a mapping with string keys."""
        if not isinstance(value, Mapping):
            raise self.wrong(path, value, expected)
        for key in value:
            if not isinstance(key, str):
                raise self.wrong(path + (str(key),), key, "a string key")
        return value

    def section(
        self, value: Any, path: KeyPath, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> Mapping[str, Any]:
        """An optional mapping (``None`` reads as empty) with only ``allowed`` keys."""
        expected = f"a mapping with keys among {', '.join(allowed)}"
        section = self.mapping({} if value is None else value, path, expected)
        for key in section:
            if key not in allowed:
                raise self.error(path + (key,), unknown("key", key, allowed))
        for key in required:
            if key not in section:
                detail = f"missing required key {key!r}; expected a mapping with {key!r}"
                raise self.error(path, detail)
        return section

    def integer(
        self, value: Any, path: KeyPath, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An integer (never a boolean) within the bounds."""
        expected = _bounded("an integer", minimum, maximum)
        if not is_int(value):
            raise self.wrong(path, value, expected)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(path, got(value, expected, with_kind=False))
        return value

    def positive_number(self, value: Any, path: KeyPath) -> float:
        """A finite number > 0, as a float."""
        if not is_number(value) or not math.isfinite(value):
            raise self.wrong(path, value, "a number > 0")
        if value <= 0:
            raise self.error(path, got(value, "a number > 0", with_kind=False))
        return float(value)

    def string(self, value: Any, path: KeyPath, expected: str) -> str:
        """A non-empty string."""
        if not isinstance(value, str) or not value.strip():
            raise self.wrong(path, value, expected)
        return value

    def boolean(self, value: Any, path: KeyPath) -> bool:
        """``true`` or ``false``."""
        if not isinstance(value, bool):
            raise self.wrong(path, value, "true or false")
        return value

    def choice(self, value: Any, path: KeyPath, options: Sequence[str]) -> str:
        """One of ``options``, compared without case, returned as the option is spelt."""
        by_lower = {option.lower(): option for option in options}
        if not isinstance(value, str) or value.lower() not in by_lower:
            hint = did_you_mean(value, options) if isinstance(value, str) else ""
            raise self.wrong(path, value, one_of(options) + hint)
        return by_lower[value.lower()]

    def plain(self, value: Any, path: KeyPath, *, mappings: bool) -> Any:
        """A copy of ``value`` after checking it is JSON-like, so that the spec can be stored.

        Scalars and lists always; mappings with string keys only if ``mappings``.
        """
        if isinstance(value, _SCALARS):
            if isinstance(value, float) and not math.isfinite(value):
                raise self.wrong(path, value, "a finite number")
            return value
        if isinstance(value, (list, tuple)):
            items = enumerate(value)
            return [self.plain(item, path + (i,), mappings=mappings) for i, item in items]
        if mappings and isinstance(value, Mapping):
            checked = self.mapping(value, path, "a mapping")
            return {k: self.plain(item, path + (k,), mappings=True) for k, item in checked.items()}
        expected = "a string, number, boolean, null, list" + (" or mapping" if mappings else "")
        raise self.wrong(path, value, expected)


def _bounded(kind: str, minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    return kind
