"""How built-in tasks merge and check their settings, and build their optimisers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks._optim import make_optimizer
from optuna_bigmodel.tasks._settings import choice_setting
from optuna_bigmodel.tasks._settings import float_setting
from optuna_bigmodel.tasks._settings import int_setting
from optuna_bigmodel.tasks._settings import knob_names
from optuna_bigmodel.tasks._settings import resolve_settings


MODEL = (int_setting("width", 8, 1), float_setting("lr", 0.1, 0.0, low_open=True))
DATA = (choice_setting("order", 2, (1, 2)), int_setting("seed", 0, 0))


def _resolve(params: dict, model: dict | None = None, data: dict | None = None):  # noqa: ANN202
    return resolve_settings("t", params, model, data, MODEL, DATA)


def test_knob_overrides_study_file_which_overrides_default() -> None:
    settings = _resolve({"width": 32}, {"width": 16}, {"order": 1})
    assert settings["width"] == 32
    assert settings["order"] == 1
    assert settings["lr"] == 0.1
    assert settings.origins == {
        "width": "knob", "order": "task.data setting", "lr": "default", "seed": "default"
    }


def test_values_are_converted_to_their_kind() -> None:
    settings = _resolve({"width": np.int64(4), "lr": 1})
    assert type(settings["width"]) is int and type(settings["lr"]) is float


def test_empty_sections_read_as_none_mean_nothing_set() -> None:
    assert _resolve({}, None, None)["width"] == 8


def test_data_seed_is_no_knob() -> None:
    assert knob_names(MODEL, DATA) == {"width", "lr", "order"}
    with pytest.raises(BadInputError, match="unknown knob 'seed'"):
        _resolve({"seed": 3})


@pytest.mark.parametrize(
    "params, model, data, expected",
    [
        ({"widht": 3}, {}, {}, ["unknown knob 'widht'", "did you mean 'width'", "lr, order"]),
        ({}, {"order": 1}, {}, ["unknown task.model setting 'order'", "accepted: lr, width"]),
        ({}, {}, {"lr": 1}, ["unknown task.data setting 'lr'", "accepted: order, seed"]),
        ({"width": 0}, {}, {}, ["knob 'width' = 0", "an integer >= 1"]),
        ({"width": 2.5}, {}, {}, ["knob 'width' = 2.5"]),
        ({"width": True}, {}, {}, ["knob 'width' = True"]),
        ({}, {"lr": 0.0}, {}, ["task.model setting 'lr' = 0.0", "a number > 0.0"]),
        ({}, {"lr": "3e-3"}, {}, ["'lr' = '3e-3'", "a number > 0.0"]),
        ({}, {"lr": float("nan")}, {}, ["'lr' = nan"]),
        ({}, {}, {"order": 3}, ["task.data setting 'order' = 3", "one of 1, 2"]),
        ({}, [1, 2], {}, ["task.model must be a mapping"]),
    ],
)
def test_bad_settings_name_field_value_and_what_is_allowed(
    params: dict, model: dict, data: dict, expected: list[str]
) -> None:
    with pytest.raises(BadInputError) as error:
        _resolve(params, model, data)
    for part in expected:
        assert part in str(error.value)
    assert str(error.value).startswith("task 't': ")


def test_cross_setting_error_names_where_the_value_came_from() -> None:
    settings = _resolve({"width": 3})
    message = str(settings.error("width", "an even number"))
    assert message == "task 't': knob 'width' = 3 is not allowed; expected an even number"


@pytest.mark.parametrize(
    "name, kind, momentum",
    [
        ("sgd", torch.optim.SGD, 0),
        ("momentum", torch.optim.SGD, 0.9),
        ("adam", torch.optim.Adam, None),
        ("adamw", torch.optim.AdamW, None),
    ],
)
def test_make_optimizer(name: str, kind: type, momentum: float | None) -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer = make_optimizer(params, name, lr=0.5, weight_decay=0.01)
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.5 and group["weight_decay"] == 0.01
    if momentum is not None:
        assert group["momentum"] == momentum


def test_make_optimizer_refuses_unknown_names() -> None:
    with pytest.raises(BadInputError, match="one of sgd, momentum, adam, adamw, got 'rmsprop'"):
        make_optimizer([torch.nn.Parameter(torch.zeros(1))], "rmsprop", 0.1, 0.0)
