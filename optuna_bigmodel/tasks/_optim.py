"""The optimisers every built-in task offers, and the settings that choose one."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks._settings import choice_setting
from optuna_bigmodel.tasks._settings import float_setting


OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adamw")

# Model settings (and knobs) shared by all built-in tasks. They belong to the model because the
# LightningModule owns `configure_optimizers`.
OPTIMIZER_SETTINGS = (
    float_setting("lr", 3e-3, 0.0, low_open=True),
    choice_setting("optimizer", "adam", OPTIMIZER_NAMES),
    float_setting("weight_decay", 0.0, 0.0),
    float_setting("l1", 0.0, 0.0),  # L1 penalty; the module adds it to the training loss
)


def make_optimizer(
    parameters: Iterable[torch.nn.Parameter], name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Builds the optimiser called ``name``, one parameter group, decay on every parameter.

    ``sgd`` and ``adam`` add ``weight_decay`` to the gradient (L2 penalty); ``adamw`` decays the
    weights directly (decoupled, Loshchilov & Hutter). ``momentum`` is SGD with momentum 0.9.
    """
    params = list(parameters)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise BadInputError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}, got {name!r}")
