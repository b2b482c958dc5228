"""The knob values a probe builds with: each sampled knob at the middle of its space."""

from __future__ import annotations

import math

import pytest
import torch

from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.probes import build_at_middle, middle_params
from optuna_bigmodel.spec import parse_spec


def test_log_range_middle_is_equally_far_from_both_ends_in_log() -> None:
    value = middle_params([Knob("lr", axis="strategy", low=1e-4, high=0.5, log=True)])["lr"]
    assert math.log(value / 1e-4) == pytest.approx(math.log(0.5 / value))


@pytest.mark.parametrize(
    "knob",
    [
        Knob("n_layers", axis="structure", low=1, high=6),
        Knob("width", axis="structure", low=16, high=256, step=16),
        Knob("dropout", axis="strategy", low=0.0, high=0.6, step=0.2),
        Knob("heads", axis="structure", low=1, high=64, log=True),
    ],
)
def test_lattice_middle_is_the_nearest_lattice_point(knob: Knob) -> None:
    value = middle_params([knob])[knob.name]
    ideal = math.sqrt(knob.low * knob.high) if knob.log else (knob.low + knob.high) / 2
    lattice = [knob.low + i * (knob.step or 1) for i in range(1000)
               if knob.low + i * (knob.step or 1) <= knob.high + 1e-9]  # fmt: skip
    assert knob.contains(value)
    assert abs(value - ideal) == pytest.approx(min(abs(v - ideal) for v in lattice))


def test_choices_fixed_and_learned_knobs() -> None:
    knobs = [
        Knob("optimizer", axis="strategy", choices=("momentum", "adam")),
        Knob("dropout", axis="strategy", mode="fixed", value=0.1),
        Knob("lr", axis="strategy", mode="learn", low=1e-3, high=1e-1),
    ]
    params = middle_params(knobs)
    assert params["optimizer"] == "momentum" and params["dropout"] == 0.1
    assert params["lr"] == knobs[2].init  # a learned knob starts where it always starts


def test_build_at_middle_builds_the_task_with_those_values() -> None:
    spec = parse_spec({
        "name": "probe", "task": {"name": "markov_gpt", "data": {"n_train": 64}},
        "budget": {"n_trials": 1},
        "knobs": {"d_model": {"axis": "structure", "choices": [16, 32]},
                  "lr": {"axis": "strategy", "low": 1e-4, "high": 1e-2, "log": True}},
    })  # fmt: skip
    built, params = build_at_middle(spec)
    again, _ = build_at_middle(spec)
    assert params == {"d_model": 16, "lr": pytest.approx(1e-3)}
    assert built.module.hparams.lr == params["lr"]
    assert built.module.net.config.d_model == 16
    weights = zip(built.module.parameters(), again.module.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in weights)  # the study's seed fixes them


def test_build_at_middle_leaves_the_inner_loops_knobs_out_of_the_task() -> None:
    spec = parse_spec({
        "name": "probe", "task": {"name": "markov_gpt", "data": {"n_train": 64}},
        "budget": {"n_trials": 1},
        "knobs": {"warmup": {"axis": "strategy", "low": 0.0, "high": 20.0},
                  "descent": {"axis": "parameter", "choices": ["dynamic", "sgd"]}},
    })  # fmt: skip
    built, params = build_at_middle(spec)  # the task refuses unknown settings
    assert params == {"warmup": 10.0, "descent": "dynamic"}
    assert built.module.net.config.d_model == 32
