"""The sample-mode search space of a model's gates, derived from the gates themselves.

Granularity: one knob per gate. A unit gate gives an integer knob, the number of units kept
(``min_kept`` to ``n_units``), and keeps the first ones: before training, units of one gate
(heads, channel groups, blocks) are exchangeable, so which ones are kept makes no difference
that a search could exploit, while the count is what matters; the space is also far smaller
(``n_units - min_kept + 1`` values instead of ``2 ** n_units``). A choice gives a categorical
knob over its candidate names. A gate with a single option gives no knob. Knobs are named after
the gate's path in the model, so the grid over them enumerates exactly the declared structures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs._grid import MAX_FULL_INT_GRID
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import unknown
from optuna_bigmodel.knobs._validate import describe_space
from optuna_bigmodel.structure._choice import ChoiceGate
from optuna_bigmodel.structure._discretise import Structure
from optuna_bigmodel.structure._gate import Gate
from optuna_bigmodel.structure._params import named_gates
from optuna_bigmodel.structure._unit_gate import UnitGate


def structure_knobs(module: nn.Module) -> list[Knob]:
    """One sample-mode knob per gate of ``module`` that has more than one option.

    Example:

        .. code::

            knobs = structure_knobs(model)  # e.g. Knob("blocks.0.attn.heads_gate", 1..4)
            params = {knob.name: knob.suggest(trial) for knob in knobs}
            apply_structure(model, params)
    """
    knobs = []
    for name, gate in named_gates(module):
        knob = _knob(name, gate)
        if knob is not None:
            knobs.append(knob)
    return knobs


def _knob(name: str, gate: Gate) -> Knob | None:
    if isinstance(gate, ChoiceGate):
        return Knob(name, axis="structure", choices=gate.names) if gate.n_units > 1 else None
    low, high = gate.min_kept, gate.n_units
    if low == high:
        return None
    # Beyond this many values a grid would sample the range; listing them keeps it exhaustive.
    grid = tuple(range(low, high + 1)) if high - low + 1 > MAX_FULL_INT_GRID else None
    return Knob(name, axis="structure", low=low, high=high, grid=grid)


def apply_structure(module: nn.Module, structure: Structure | Mapping[str, Any]) -> None:
    """Fix every gate of ``module``: to a :class:`Structure`, or to knob values.

    With knob values (a trial's params, which may hold other knobs too; those are ignored), a
    unit gate keeps its first ``value`` units and a choice its ``value`` candidate; a gate with one
    option takes it. The gates end in ``"fixed"`` mode, with no parameters.

    Raises:
        BadInputError: For a structure or params that lack a gate of ``module``, name a gate it
            does not have (structure only), or give a value outside a gate's space.
    """
    gates = dict(named_gates(module))
    if isinstance(structure, Structure):
        _apply_exact(gates, structure)
        return
    knobs = {name: _knob(name, gate) for name, gate in gates.items()}
    missing = [k.name for k in knobs.values() if k is not None and k.name not in structure]
    if missing:
        raise BadInputError(f"apply_structure: params lack the structure knobs {missing}")
    for name, gate in gates.items():
        _apply_value(gate, knobs[name], structure)


def _apply_value(gate: Gate, knob: Knob | None, params: Mapping[str, Any]) -> None:
    if knob is None:  # a single option
        value = gate.n_units if isinstance(gate, UnitGate) else gate.names[0]
    else:
        value = params[knob.name]
        if not knob.contains(value):
            detail = got(value, describe_space(knob))
            raise BadInputError(f"apply_structure: knob {knob.name!r}: {detail}")
    if isinstance(gate, UnitGate):
        gate.fix(range(value))
    else:
        gate.fix(value)


def _apply_exact(gates: Mapping[str, Gate], structure: Structure) -> None:
    given = {**structure.gates, **structure.choices}
    for name in given:
        if name not in gates:
            raise BadInputError(f"apply_structure: structure {unknown('gate', name, gates)}")
    missing = [name for name in gates if name not in given]
    if missing:
        raise BadInputError(f"apply_structure: structure lacks the gates {missing}")
    for name, gate in gates.items():
        gate.fix(given[name])
