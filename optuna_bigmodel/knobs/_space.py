"""What a set of knobs means to a study: its grid search space and one trial's parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from typing import TYPE_CHECKING

from optuna_bigmodel.knobs._errors import KnobError


if TYPE_CHECKING:
    import optuna

    from optuna_bigmodel.knobs._knob import Knob


def search_space(knobs: Iterable[Knob]) -> dict[str, list[Any]]:
    """The grid of the sampled knobs, as ``GridSampler`` takes it: name -> grid values.

    Fixed knobs are left out: the sampler never sees them.
    """
    return {knob.name: knob.grid_values() for knob in _unique(knobs) if knob.is_sampled}


def params_for_trial(knobs: Iterable[Knob], trial: optuna.Trial) -> dict[str, Any]:
    """Each knob's value for ``trial``: sampled ones are suggested, fixed ones give their value."""
    return {knob.name: knob.suggest(trial) for knob in _unique(knobs)}


def _unique(knobs: Iterable[Knob]) -> list[Knob]:
    seen: set[str] = set()
    listed = list(knobs)
    for knob in listed:
        if knob.name in seen:
            raise KnobError(knob.name, "name", "declared twice; expected each knob name once")
        seen.add(knob.name)
    return listed
