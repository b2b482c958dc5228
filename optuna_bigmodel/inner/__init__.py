"""The inner loop: what one trial's training run tunes inside itself.

- :class:`InnerPlan` / :func:`inner_plan`: the descent (``sgd``, ``gd``, ``dynamic``), the driven
  learning-rate schedule and which strategy values are learned, the structure settings.
- :class:`BilevelTuning`: the Lightning callback that runs it (first-order bilevel: weights on
  training batches, learned values and gates on search batches).
- :func:`study_knobs`: the study's knobs plus, in ``structure: sample`` mode, one knob per gate
  derived from the model.
"""

from optuna_bigmodel.inner._bilevel import BilevelTuning
from optuna_bigmodel.inner._gates import GateLearner
from optuna_bigmodel.inner._plan import DESCENTS
from optuna_bigmodel.inner._plan import INNER_KNOBS
from optuna_bigmodel.inner._plan import inner_plan
from optuna_bigmodel.inner._plan import InnerPlan
from optuna_bigmodel.inner._plan import task_params
from optuna_bigmodel.inner._space import apply_sampled_structure
from optuna_bigmodel.inner._space import study_knobs
from optuna_bigmodel.inner._trial import prepare_trial
from optuna_bigmodel.inner._trial import PreparedTrial


__all__ = [
    "BilevelTuning",
    "DESCENTS",
    "GateLearner",
    "INNER_KNOBS",
    "InnerPlan",
    "PreparedTrial",
    "apply_sampled_structure",
    "inner_plan",
    "prepare_trial",
    "study_knobs",
    "task_params",
]
