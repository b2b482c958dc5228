"""Optuna pruners by name, with their kwargs checked; ``patient`` wraps another named pruner."""

from __future__ import annotations

from collections.abc import Mapping
import inspect
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.pruners import BasePruner

from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.study._samplers import accepted_kwargs
from optuna_bigmodel.study._samplers import canonical_name
from optuna_bigmodel.study._samplers import check_kwargs
from optuna_bigmodel.study._samplers import construct
from optuna_bigmodel.study._samplers import OptionError


if TYPE_CHECKING:
    from optuna_bigmodel.spec import PrunerSpec


# Canonical name -> class name in optuna.pruners.
PRUNERS: dict[str, str] = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "threshold": "ThresholdPruner",
    "patient": "PatientPruner",
    "wilcoxon": "WilcoxonPruner",
}
_ALIASES = {"nop": "none"}

# PatientPruner takes a pruner object; a study file names the wrapped one instead.
_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_PATIENT_KWARGS = {
    "patience": inspect.Parameter("patience", _KEYWORD),
    "min_delta": inspect.Parameter("min_delta", _KEYWORD, default=0.0),
    "wrapped": inspect.Parameter("wrapped", _KEYWORD, default="median"),
}


def check_pruner(name: str, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check a pruner name and its kwargs; return the canonical name and the kwargs.

    For ``patient`` the ``wrapped`` kwarg (a name or ``{name, kwargs}``, default ``median``) is
    checked in turn and returned as ``{"name": ..., "kwargs": {...}}``.

    Raises:
        OptionError: For an unknown name or kwarg, a missing required kwarg (``percentile`` of
            ``percentile``, ``patience`` of ``patient``), or a ``threshold`` with no bound.
    """
    if isinstance(name, str):
        name = _ALIASES.get(name.strip().lower(), name)
    canonical = canonical_name("pruner", name, PRUNERS)
    checked = dict(kwargs)
    if canonical == "patient":
        check_kwargs("pruner", canonical, _PATIENT_KWARGS, checked)
        checked["wrapped"] = _check_wrapped(checked.get("wrapped", "median"))
        return canonical, checked
    check_kwargs("pruner", canonical, accepted_kwargs(_pruner_class(canonical)), checked)
    if canonical == "threshold" and checked.get("lower") is None and checked.get("upper") is None:
        detail = "pruner 'threshold' needs the kwarg 'lower' or 'upper' (or both); got neither"
        raise OptionError(("kwargs",), detail)
    return canonical, checked


def _check_wrapped(wrapped: Any) -> dict[str, Any]:
    path = ("kwargs", "wrapped")
    if isinstance(wrapped, str):
        name, kwargs = wrapped, {}
    elif isinstance(wrapped, Mapping) and "name" in wrapped and set(wrapped) <= {"name", "kwargs"}:
        name, kwargs = wrapped["name"], wrapped.get("kwargs") or {}
    else:
        expected = "a pruner name or a mapping with 'name' and 'kwargs'"
        raise OptionError(path, "pruner 'patient': wrapped " + got(wrapped, expected))
    if not isinstance(kwargs, Mapping):
        detail = "pruner 'patient': wrapped kwargs " + got(kwargs, "a mapping")
        raise OptionError(path + ("kwargs",), detail)
    try:
        canonical, kwargs = check_pruner(name, kwargs)
    except OptionError as err:
        # A wrapped pruner written as a bare name has no "name" key to point at.
        bare = isinstance(wrapped, str) and err.key_path[:1] == ("name",)
        inner = err.key_path[1:] if bare else err.key_path
        raise OptionError(path + inner, err.detail) from None
    return {"name": canonical, "kwargs": kwargs}


def make_pruner(spec_or_obj: PrunerSpec | BasePruner | str) -> BasePruner:
    """Build the pruner a spec (or a bare name) names; a pruner object is returned untouched.

    Names are ``none`` (or ``nop``: Optuna's ``NopPruner``), ``median``, ``percentile``,
    ``successive_halving``, ``hyperband``, ``threshold``, ``patient`` and ``wilcoxon``, in any
    case, or the Optuna class name. ``patient`` builds ``PatientPruner`` around its ``wrapped``
    pruner; ``wrapped: none`` prunes on patience alone.

    Example:

        .. code::

            from optuna_bigmodel.spec import PrunerSpec
            from optuna_bigmodel.study._pruners import make_pruner

            pruner = make_pruner(PrunerSpec("median", {"n_warmup_steps": 50}))

    Raises:
        BadInputError: For an unknown name or kwarg, a missing required kwarg, or kwargs the
            pruner itself rejects.
    """
    if isinstance(spec_or_obj, BasePruner):
        return spec_or_obj
    if isinstance(spec_or_obj, str):
        return _build(*check_pruner(spec_or_obj, {}))
    return _build(*check_pruner(spec_or_obj.name, spec_or_obj.kwargs))


def _build(canonical: str, kwargs: dict[str, Any]) -> BasePruner:
    if canonical != "patient":
        return construct("pruner", canonical, _pruner_class(canonical), kwargs)
    wrapped = kwargs.pop("wrapped")
    inner = None if wrapped["name"] == "none" else _build(wrapped["name"], dict(wrapped["kwargs"]))
    patient_kwargs = {"wrapped_pruner": inner, **kwargs}
    return construct("pruner", canonical, optuna.pruners.PatientPruner, patient_kwargs)


def _pruner_class(canonical: str) -> type[BasePruner]:
    return getattr(optuna.pruners, PRUNERS[canonical])
