"""Lightning callbacks that connect a training run to its Optuna trial and to its structure."""

from optuna_bigmodel.callbacks._pruning import OptunaPruning
from optuna_bigmodel.callbacks._structure_pruning import StructurePruning, StructurePruningEvent

__all__ = ["OptunaPruning", "StructurePruning", "StructurePruningEvent"]
