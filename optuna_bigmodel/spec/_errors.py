"""The error for a study file (or mapping, or override) that cannot be used."""

from __future__ import annotations

from typing import Any

from optuna_bigmodel._errors import BadInputError


KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """Write a key path as a reader of the file would: ``knobs.opt.choices[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


class SpecError(BadInputError):
    """A study spec that cannot be used.

    The message names the file (or ``<dict>`` / ``<overrides>``), the line when the value came
    from a file, the key path, the bad value and what is expected, e.g.::

        studies/quick.yaml, line 12: knobs.lr.low: got 'abc' (a string); expected a finite number

    Attributes:
        source: The file path, ``"<dict>"`` or ``"<overrides>"``.
        path: The key path as a tuple, e.g. ``("knobs", "lr", "low")``; ``()`` for the whole file.
        line: The 1-based line in the file, or ``None`` when there is no file.
        detail: The message without the location.
    """

    def __init__(self, source: str, path: KeyPath, detail: str, line: int | None = None) -> None:
        self.source = source
        self.path = tuple(path)
        self.detail = detail
        self.line = line
        where = source if line is None else f"{source}, line {line}"
        at = f" {dotted(self.path)}:" if self.path else ""
        super().__init__(f"{where}:{at} {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error intact when it crosses a process boundary (a worker pool).
        return (type(self), (self.source, self.path, self.detail, self.line))
