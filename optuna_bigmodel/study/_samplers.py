"""Optuna samplers by name, with their kwargs checked and the study's seed and grid filled in.

The name and kwarg checks here are shared with the pruners and run when a spec is parsed, so a
bad study file fails before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import inspect
import itertools
import math
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import IntDistribution
from optuna.samplers import BaseSampler

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs import KnobError
from optuna_bigmodel.knobs import search_space
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import one_of
from optuna_bigmodel.knobs._messages import unknown


if TYPE_CHECKING:
    from optuna_bigmodel.knobs import Knob
    from optuna_bigmodel.spec import SamplerSpec


# Canonical name -> class name in optuna.samplers.
SAMPLERS: dict[str, str] = {
    "grid": "GridSampler",
    "brute_force": "BruteForceSampler",
    "random": "RandomSampler",
    "tpe": "TPESampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "nsgaii": "NSGAIISampler",
    "nsgaiii": "NSGAIIISampler",
}
# Kwargs derived from the knobs, never written by the user.
_DERIVED = {"grid": ("search_space",)}
_EXHAUSTIVE = ("grid", "brute_force")


class OptionError(BadInputError):
    """A bad sampler or pruner name or kwarg.

    Args:
        key_path: Where the fault is inside ``{name, kwargs}``, e.g. ``("kwargs", "n_startup")``;
            the spec parser prefixes it with ``sampler`` or ``pruner`` to point at the file.
        detail: What was given and what is expected.
    """

    def __init__(self, key_path: tuple[str, ...], detail: str) -> None:
        self.key_path = tuple(key_path)
        self.detail = detail
        super().__init__(detail)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error intact when it crosses a process boundary (a worker pool).
        return (type(self), (self.key_path, self.detail))


def canonical_name(kind: str, name: Any, table: Mapping[str, str]) -> str:
    """The canonical name for ``name``: case-insensitive, ``-`` as ``_``, class names accepted.

    Raises:
        OptionError: For any other name, listing the allowed names and the nearest one.
    """
    if not isinstance(name, str):
        raise OptionError(("name",), got(name, f"a {kind} name, {one_of(table)}"))
    key = name.strip().lower().replace("-", "_")
    for canonical, class_name in table.items():
        if key in (canonical, class_name.lower()):
            return canonical
    raise OptionError(("name",), unknown(f"{kind} name", name, table))


def accepted_kwargs(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls`` takes, by name (``*args`` and ``**kwargs`` left out)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = inspect.signature(cls).parameters.values()
    return {p.name: p for p in parameters if p.kind not in variadic}


def check_kwargs(
    kind: str, name: str, accepted: Mapping[str, inspect.Parameter], kwargs: Mapping[str, Any]
) -> None:
    """Check that every kwarg is one of ``accepted`` and that every required one is given.

    Raises:
        OptionError: Naming the kwarg, the sampler or pruner, and the kwargs it accepts.
    """
    for key in kwargs:
        if key not in accepted:
            detail = unknown("kwarg", key, accepted)
            raise OptionError(("kwargs", str(key)), f"{kind} {name!r}: {detail}")
    for key, parameter in accepted.items():
        if parameter.default is inspect.Parameter.empty and key not in kwargs:
            allowed = ", ".join(accepted)
            detail = f"{kind} {name!r} needs the kwarg {key!r}; it accepts: {allowed}"
            raise OptionError(("kwargs",), detail)


def construct(kind: str, name: str, cls: type, kwargs: Mapping[str, Any]) -> Any:
    """``cls(**kwargs)``, with Optuna's own complaints about a value turned into bad input."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        detail = f"{kind} {name!r} rejected its kwargs {dict(kwargs)!r}: {err}"
        raise BadInputError(detail) from None


def check_sampler(name: str, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check a sampler name and its kwarg names; return the canonical name and the kwargs.

    Raises:
        OptionError: For an unknown name, an unknown kwarg or a kwarg the knobs provide.
    """
    canonical = canonical_name("sampler", name, SAMPLERS)
    accepted = accepted_kwargs(_sampler_class(canonical))
    for derived in _DERIVED.get(canonical, ()):
        del accepted[derived]
    check_kwargs("sampler", canonical, accepted, kwargs)
    return canonical, dict(kwargs)


def make_sampler(
    spec_or_obj: SamplerSpec | BaseSampler | str,
    knobs: Iterable[Knob] = (),
    seed: int | None = None,
) -> BaseSampler:
    """Build the sampler a spec (or a bare name) names; a sampler object is returned untouched.

    Names are ``grid``, ``brute_force``, ``random``, ``tpe``, ``cmaes``, ``gp``, ``qmc``,
    ``nsgaii`` and ``nsgaiii``, in any case, or the Optuna class name. ``grid`` searches
    :func:`~optuna_bigmodel.knobs.search_space` of ``knobs``. ``seed`` goes to every sampler that
    takes one, unless the spec's kwargs set it.

    Example:

        .. code::

            from optuna_bigmodel.study._samplers import make_sampler

            sampler = make_sampler("tpe", seed=0)

    Raises:
        BadInputError: For an unknown name or kwarg, a grid with no sampled knob, a brute-force
            search over a continuous knob, or kwargs the sampler itself rejects.
    """
    if isinstance(spec_or_obj, BaseSampler):
        return spec_or_obj
    name, kwargs = _name_and_kwargs(spec_or_obj)
    canonical, kwargs = check_sampler(name, kwargs)
    knobs = list(knobs)
    if canonical == "grid":
        kwargs["search_space"] = _grid_space(knobs)
    if canonical == "brute_force":
        brute_force_size(knobs)  # fails here, naming the knob, rather than at the first trial
    cls = _sampler_class(canonical)
    if "seed" in accepted_kwargs(cls) and "seed" not in kwargs:
        kwargs["seed"] = seed
    return construct("sampler", canonical, cls, kwargs)


def is_exhaustive(sampler: BaseSampler | SamplerSpec | str) -> bool:
    """Whether ``sampler`` enumerates a finite space (grid, brute force) rather than sampling."""
    if isinstance(sampler, BaseSampler):
        exhaustive = (optuna.samplers.GridSampler, optuna.samplers.BruteForceSampler)
        return isinstance(sampler, exhaustive)
    name = sampler if isinstance(sampler, str) else sampler.name
    return canonical_name("sampler", name, SAMPLERS) in _EXHAUSTIVE


def grid_size(knobs: Iterable[Knob]) -> int:
    """How many points the grid of ``knobs`` has (1 when no knob is sampled)."""
    return math.prod(len(values) for values in search_space(knobs).values())


def grid_points(knobs: Iterable[Knob]) -> list[dict[str, Any]]:
    """Every point of the grid, in a fixed order (the last knob varies fastest).

    The runner queues these so that workers sharing a study evaluate each point exactly once.
    """
    space = search_space(knobs)
    return [dict(zip(space, values)) for values in itertools.product(*space.values())]


def brute_force_size(knobs: Iterable[Knob]) -> int:
    """How many trials ``BruteForceSampler`` needs to visit every value of every sampled knob.

    Unlike the grid, this counts every value of a range (no ``grid_points`` sampling).

    Raises:
        KnobError: For a float range without ``step``, which cannot be enumerated.
    """
    return math.prod(_count_values(knob) for knob in knobs if knob.is_sampled)


def _count_values(knob: Knob) -> int:
    distribution = knob.distribution()
    if isinstance(distribution, CategoricalDistribution):
        return len(distribution.choices)
    if isinstance(distribution, IntDistribution):
        return (distribution.high - distribution.low) // distribution.step + 1
    if distribution.step is None:
        detail = "the brute_force sampler needs every sampled knob to be discrete"
        raise KnobError(knob.name, "step", detail + "; give this float range a step, or choices")
    return round((distribution.high - distribution.low) / distribution.step) + 1


def _grid_space(knobs: list[Knob]) -> dict[str, list[Any]]:
    space = search_space(knobs)
    if not space:
        detail = "needs at least one knob in sample mode to make a grid of; got none"
        raise BadInputError(f"sampler 'grid' {detail}")
    return space


def _sampler_class(canonical: str) -> type[BaseSampler]:
    return getattr(optuna.samplers, SAMPLERS[canonical])


def _name_and_kwargs(spec: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    return spec.name, dict(spec.kwargs)
