"""The ``structure:`` section: which keys each mode takes, and the sample-mode budget."""

from __future__ import annotations

from typing import Any

import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.spec import parse_spec


def _spec(structure: dict[str, Any]) -> dict[str, Any]:
    return {"name": "s", "task": {"name": "markov_gpt"}, "structure": structure,
            "budget": {"n_trials": 1}}  # fmt: skip


def test_a_sample_mode_budget_is_read_and_written_back() -> None:
    spec = parse_spec(_spec({"mode": "sample", "budget": 0.5}))
    assert spec.structure.budget == 0.5
    assert spec.structure.to_dict() == {"mode": "sample", "budget": 0.5}
    assert parse_spec(spec.to_dict()).structure == spec.structure


@pytest.mark.parametrize(
    ("structure", "words"),
    [
        ({"mode": "off", "budget": 0.5}, ["structure.budget", "modes 'sample' and 'learn'"]),
        ({"mode": "sample", "gate_lr": 0.1}, ["structure.gate_lr", "mode 'learn'"]),
        ({"mode": "sample", "budget": 1.5}, ["structure.budget", "1.5", "(0, 1]"]),
        ({"mode": "sample", "choices": "sample"}, ["structure.choices", "mode 'learn'"]),
        ({"mode": "learn", "choices": "grid"}, ["structure.choices", "'grid'", "'sample'"]),
    ],
)
def test_keys_outside_their_mode_or_range_are_clear_errors(
    structure: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(BadInputError) as err:
        parse_spec(_spec(structure))
    for word in words:
        assert word in str(err.value)


def test_a_compute_budget_alone_lets_a_random_study_stop() -> None:
    data = {"name": "s", "task": {"name": "markov_gpt"}, "budget": {"compute_steps": 500}}
    spec = parse_spec(data)
    assert spec.budget.compute_steps == 500 and spec.budget.n_trials is None
    assert parse_spec(spec.to_dict()).budget == spec.budget
    with pytest.raises(BadInputError, match=r"budget.compute_steps.*-3"):
        parse_spec({**data, "budget": {"compute_steps": -3}})
    with pytest.raises(BadInputError, match="none of n_trials, timeout, compute_steps"):
        parse_spec({**data, "budget": {}})
