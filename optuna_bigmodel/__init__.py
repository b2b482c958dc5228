"""optuna_bigmodel: tune large PyTorch models with Optuna and PyTorch Lightning.

Declare each tunable quantity once, as a knob in a study file, and let an Optuna study tune it over
real Lightning training runs::

    import optuna_bigmodel

    study = optuna_bigmodel.run_study("studies/quickstart.yaml")
    print(study.best_params)
"""

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks import OptunaPruning, StructurePruning
from optuna_bigmodel.inner import BilevelTuning, InnerPlan
from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.probes import largest_batch_size, lr_range_test
from optuna_bigmodel.spec import StudySpec, load_spec, parse_spec
from optuna_bigmodel.study import WarmStart, open_storage, run_study, run_worker, warm_start
from optuna_bigmodel.tasks import Task, TaskBuild, register_task, resolve_task
from optuna_bigmodel.visualization import history_data, plot_history, write_report

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "BilevelTuning",
    "InnerPlan",
    "Knob",
    "OptunaPruning",
    "StructurePruning",
    "StudySpec",
    "Task",
    "TaskBuild",
    "WarmStart",
    "history_data",
    "largest_batch_size",
    "load_spec",
    "lr_range_test",
    "open_storage",
    "parse_spec",
    "plot_history",
    "register_task",
    "resolve_task",
    "run_study",
    "run_worker",
    "warm_start",
    "write_report",
]
