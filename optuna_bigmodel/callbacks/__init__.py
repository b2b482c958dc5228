"""Lightning callbacks that connect a training run to its Optuna trial."""

from optuna_bigmodel.callbacks._pruning import OptunaPruning

__all__ = ["OptunaPruning"]
