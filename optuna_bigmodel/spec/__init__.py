"""Study specs: a YAML study file read into checked, typed dataclasses."""

from __future__ import annotations

from optuna_bigmodel.spec._errors import SpecError
from optuna_bigmodel.spec._model import BudgetSpec
from optuna_bigmodel.spec._model import InnerSpec
from optuna_bigmodel.spec._model import PrunerSpec
from optuna_bigmodel.spec._model import SamplerSpec
from optuna_bigmodel.spec._model import StructureSpec
from optuna_bigmodel.spec._model import StudySpec
from optuna_bigmodel.spec._model import TaskSpec
from optuna_bigmodel.spec._model import TrainerSpec
from optuna_bigmodel.spec._overrides import apply_overrides
from optuna_bigmodel.spec._parse import load_spec
from optuna_bigmodel.spec._parse import parse_spec


__all__ = [
    "BudgetSpec",
    "InnerSpec",
    "PrunerSpec",
    "SamplerSpec",
    "SpecError",
    "StructureSpec",
    "StudySpec",
    "TaskSpec",
    "TrainerSpec",
    "apply_overrides",
    "load_spec",
    "parse_spec",
]
