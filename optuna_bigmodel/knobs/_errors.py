"""The error a knob declaration raises, carrying where in the declaration the problem is."""

from __future__ import annotations

from typing import Any

from optuna_bigmodel._errors import BadInputError


FieldPath = tuple[str | int, ...]


class KnobError(BadInputError):
    """A knob declaration that cannot be used.

    Args:
        knob: The knob's name.
        field: The field at fault (``"low"``), a path into it (``("choices", 2)``) or ``()`` when
            the declaration as a whole is at fault.
        detail: What was given and what is expected.

    The spec parser reads :attr:`field_path` and :attr:`detail` to point at the file and line; a
    Python user sees ``knob 'lr', low: got 'abc' (a string); expected a number``.
    """

    def __init__(self, knob: Any, field: str | FieldPath, detail: str) -> None:
        self.knob = knob
        self.field_path: FieldPath = (field,) if isinstance(field, str) else tuple(field)
        self.detail = detail
        where = "".join(f"[{p}]" if isinstance(p, int) else f", {p}" for p in self.field_path)
        super().__init__(f"knob {knob!r}{where}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error intact when it crosses a process boundary (a worker pool).
        return (type(self), (self.knob, self.field_path, self.detail))
