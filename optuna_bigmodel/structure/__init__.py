"""Structure: learnable, sampled or fixed gates inside a model, its size, and its export.

A model author drops gates into any ``nn.Module``: a :class:`UnitGate` scales units (residual
blocks, attention heads, groups of channels) and a :class:`ChoiceGate` picks one of several
candidate operators. The same model code then runs with its gates off (exactly the plain model),
fixed (a 0/1 mask or a choice, e.g. from an Optuna trial) or learned (logits trained by gradients
on search batches, under a :class:`SizeBudget`). At the end :func:`discretise` turns learned gates
into a :class:`Structure` and :func:`export_model` builds the smaller model it describes.

Example:

    .. code::

        from optuna_bigmodel.structure import (
            SizeBudget, discretise, expected_fraction, set_gate_mode, structure_parameters,
            weight_parameters,
        )

        set_gate_mode(model, "learn", unit_relaxation="hard_concrete")
        weights = torch.optim.AdamW(weight_parameters(model))  # training batches only
        gates = torch.optim.Adam(structure_parameters(model), lr=0.05)  # search batches only
        budget = SizeBudget(target=0.5, warmup_steps=100, lr=0.05)
        ...
        loss = search_loss + budget.penalty(expected_fraction(model), step)
        structure = discretise(model, target=0.5)
"""

from optuna_bigmodel.structure._budget import SizeBudget
from optuna_bigmodel.structure._choice import CHOICE_RELAXATIONS
from optuna_bigmodel.structure._choice import ChoiceGate
from optuna_bigmodel.structure._choice_pick import pick_choices_by_loss
from optuna_bigmodel.structure._collapse import CollapseEvent
from optuna_bigmodel.structure._collapse import CollapseGuard
from optuna_bigmodel.structure._discretise import discretise
from optuna_bigmodel.structure._discretise import named_learned_choices
from optuna_bigmodel.structure._params import learned_choice_gates
from optuna_bigmodel.structure._discretise import Structure
from optuna_bigmodel.structure._export import export_model
from optuna_bigmodel.structure._export import sliced_linear
from optuna_bigmodel.structure._gate import Gate
from optuna_bigmodel.structure._gate import GATE_MODES
from optuna_bigmodel.structure._params import count_weights
from optuna_bigmodel.structure._params import named_gates
from optuna_bigmodel.structure._params import set_gate_mode
from optuna_bigmodel.structure._params import structure_parameters
from optuna_bigmodel.structure._params import weight_parameters
from optuna_bigmodel.structure._record import GateRecorder
from optuna_bigmodel.structure._record import structure_record
from optuna_bigmodel.structure._record import unit_key
from optuna_bigmodel.structure._size import expected_fraction
from optuna_bigmodel.structure._size import expected_param_count
from optuna_bigmodel.structure._size import unit_weight_counts
from optuna_bigmodel.structure._space import apply_structure
from optuna_bigmodel.structure._space import structure_knobs
from optuna_bigmodel.structure._unit_gate import group_sizes
from optuna_bigmodel.structure._unit_gate import KEEP_THRESHOLD
from optuna_bigmodel.structure._unit_gate import UNIT_RELAXATIONS
from optuna_bigmodel.structure._unit_gate import UnitGate


__all__ = [
    "CHOICE_RELAXATIONS",
    "ChoiceGate",
    "CollapseEvent",
    "CollapseGuard",
    "GATE_MODES",
    "Gate",
    "GateRecorder",
    "KEEP_THRESHOLD",
    "SizeBudget",
    "Structure",
    "UNIT_RELAXATIONS",
    "UnitGate",
    "apply_structure",
    "count_weights",
    "discretise",
    "named_learned_choices",
    "learned_choice_gates",
    "expected_fraction",
    "expected_param_count",
    "export_model",
    "group_sizes",
    "named_gates",
    "pick_choices_by_loss",
    "set_gate_mode",
    "sliced_linear",
    "structure_knobs",
    "structure_parameters",
    "structure_record",
    "unit_key",
    "unit_weight_counts",
    "weight_parameters",
]
