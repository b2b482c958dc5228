"""Knobs: the tunable quantities of a study, each declared once with its axis, space and mode."""

from __future__ import annotations

from optuna_bigmodel.knobs._errors import KnobError
from optuna_bigmodel.knobs._knob import Knob
from optuna_bigmodel.knobs._space import params_for_trial
from optuna_bigmodel.knobs._space import search_space
from optuna_bigmodel.knobs._validate import AXES
from optuna_bigmodel.knobs._validate import MODES


__all__ = ["AXES", "MODES", "Knob", "KnobError", "params_for_trial", "search_space"]
