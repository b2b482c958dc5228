"""The ``inner:`` and ``structure:`` sections: how each trial's own training run tunes itself."""

from __future__ import annotations

import math
from typing import Any

from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import one_of
from optuna_bigmodel.knobs._messages import is_number
from optuna_bigmodel.spec._errors import KeyPath
from optuna_bigmodel.spec._model import InnerSpec
from optuna_bigmodel.spec._model import StructureSpec
from optuna_bigmodel.spec._reader import Reader
from optuna_bigmodel.structure import CHOICE_RELAXATIONS
from optuna_bigmodel.structure import UNIT_RELAXATIONS


DESCENTS = ("sgd", "gd", "dynamic")
DECAY_KINDS = ("cosine", "exponential")
STRUCTURE_MODES = ("off", "sample", "learn")
_INNER_KEYS = ("descent", "search_fraction", "mu", "meta_lr", "decay_kind")
_LEARN_ONLY = (
    "warmup_fraction", "unit_relaxation", "choice_relaxation", "gate_lr",
    "discretise_at", "prune_below", "choices",
)  # fmt: skip
CHOICE_MODES = ("learn", "sample")


def check_inner_knobs(reader: Reader, knobs: tuple[Knob, ...]) -> None:
    """Knobs the inner loop reads take values it understands: ``descent`` one of
    :data:`DESCENTS`, ``warmup`` and ``decay`` numbers >= 0, ``<name>_init`` only beside a learned
    knob ``<name>`` and inside its range, ``meta_lr`` > 0, ``mu`` in [0, 1]."""
    learned = {knob.name: knob for knob in knobs if knob.is_learned}
    for knob in knobs:
        if knob.name.endswith("_init"):
            _check_start(reader, knob, learned.get(knob.name.removesuffix("_init")))
        elif knob.name == "meta_lr":
            _check_values(reader, knob, lambda v: v > 0, "a number > 0")
        elif knob.name == "mu":
            _check_values(reader, knob, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        if knob.name == "descent":
            values = knob.grid_values() if knob.choices or knob.mode == "fixed" else [knob.low]
            for value in values:
                if value not in DESCENTS:
                    raise reader.wrong(("knobs", "descent"), value, one_of(DESCENTS))
        elif knob.name in ("warmup", "decay") and knob.mode == "sample" and knob.choices is None:
            if knob.low < 0:
                raise reader.error(("knobs", knob.name, "low"), got(knob.low, "a number >= 0"))


def _check_start(reader: Reader, knob: Knob, learned: Knob | None) -> None:
    base = knob.name.removesuffix("_init")
    if learned is None:
        detail = f"sets where knob {base!r} starts learning; expected {base!r} with mode 'learn'"
        raise reader.error(("knobs", knob.name), detail)
    expected = f"a number in the learned range [{learned.low:g}, {learned.high:g}] of {base!r}"
    _check_values(reader, knob, lambda v: learned.low <= v <= learned.high, expected)


def _check_values(reader: Reader, knob: Knob, ok: Any, expected: str) -> None:
    """Every value the knob can take (its choices, value, or range ends) passes ``ok``."""
    if knob.choices is not None or knob.mode == "fixed":
        values = list(knob.grid_values())
    else:
        values = [knob.low, knob.high]
    for value in values:
        if not is_number(value) or not ok(value):
            raise reader.wrong(("knobs", knob.name), value, expected)


def inner(reader: Reader, value: Any, path: KeyPath) -> InnerSpec:
    """The ``inner:`` section; every key optional."""
    section = reader.section(value, path, _INNER_KEYS)
    default = InnerSpec()

    def get(key: str) -> tuple[Any, KeyPath]:
        return section.get(key, getattr(default, key)), path + (key,)

    return InnerSpec(
        descent=reader.choice(*get("descent"), DESCENTS),
        search_fraction=_number_in(reader, *get("search_fraction"), 0.0, 0.5, low_open=True),
        mu=_number_in(reader, *get("mu"), 0.0, 1.0),
        meta_lr=reader.positive_number(*get("meta_lr")),
        decay_kind=reader.choice(*get("decay_kind"), DECAY_KINDS),
    )


def structure(reader: Reader, value: Any, path: KeyPath) -> StructureSpec:
    """The ``structure:`` section; the learn-mode keys only with ``mode: learn``."""
    section = reader.section(value, path, ("mode", "budget", *_LEARN_ONLY))
    default = StructureSpec()
    raw_mode = section.get("mode", "off")
    # YAML 1.1 reads a bare `off` as false; the user wrote the word.
    mode = reader.choice("off" if raw_mode is False else raw_mode, path + ("mode",), STRUCTURE_MODES)
    if mode == "off" and "budget" in section:
        raise reader.error(path + ("budget",), "only applies to modes 'sample' and 'learn'")
    if mode != "learn":
        for key in _LEARN_ONLY:
            if key in section:
                raise reader.error(path + (key,), f"only applies to mode 'learn' (mode is {mode!r})")

    def get(key: str) -> tuple[Any, KeyPath]:
        return section.get(key, getattr(default, key)), path + (key,)

    return StructureSpec(
        mode=mode,
        budget=_number_in(reader, *get("budget"), 0.0, 1.0, low_open=True),
        warmup_fraction=_number_in(reader, *get("warmup_fraction"), 0.0, 1.0, high_open=True),
        unit_relaxation=reader.choice(*get("unit_relaxation"), UNIT_RELAXATIONS),
        choice_relaxation=reader.choice(*get("choice_relaxation"), CHOICE_RELAXATIONS),
        gate_lr=reader.positive_number(*get("gate_lr")),
        discretise_at=_number_in(reader, *get("discretise_at"), 0.0, 1.0, low_open=True),
        prune_below=_prune_below(reader, *get("prune_below")),
        choices=reader.choice(*get("choices"), CHOICE_MODES),
    )


def _prune_below(reader: Reader, value: Any, path: KeyPath) -> float | None:
    if value is None:
        return None
    return _number_in(reader, value, path, 0.0, 0.5, low_open=True, high_open=True)


def _number_in(
    reader: Reader,
    value: Any,
    path: KeyPath,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    left, right = ("(" if low_open else "["), (")" if high_open else "]")
    expected = f"a number in {left}{low:g}, {high:g}{right}"
    if not is_number(value) or not math.isfinite(value):
        raise reader.wrong(path, value, expected)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise reader.error(path, got(value, expected, with_kind=False))
    return float(value)
