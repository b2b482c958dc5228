"""The trainer settings of distributed trials and of non-finite losses: parsed, checked, stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optuna_bigmodel.spec import SpecError, TrainerSpec, load_spec, parse_spec

BASE = {"name": "demo", "task": {"name": "markov_gpt"}, "budget": {"n_trials": 2}}


def test_defaults_are_auto_and_prune() -> None:
    trainer = parse_spec(BASE).trainer
    assert (trainer.strategy, trainer.on_nonfinite) == ("auto", "prune")
    assert trainer == TrainerSpec()


@pytest.mark.parametrize("strategy", ["auto", "ddp", "ddp_spawn", "DDP"])
@pytest.mark.parametrize("policy", ["prune", "fail"])
def test_strategy_and_policy_are_read_and_survive_the_stored_round_trip(
    strategy: str, policy: str
) -> None:
    data = {**BASE, "trainer": {"devices": 2, "strategy": strategy, "on_nonfinite": policy}}
    spec = parse_spec(data)
    assert (spec.trainer.strategy, spec.trainer.on_nonfinite) == (strategy.lower(), policy)
    assert parse_spec(json.loads(json.dumps(spec.to_dict()))) == spec


def test_a_spec_stored_before_these_settings_existed_still_parses() -> None:
    stored = parse_spec(BASE).to_dict()
    del stored["trainer"]["strategy"], stored["trainer"]["on_nonfinite"]
    assert parse_spec(stored).trainer == TrainerSpec()


@pytest.mark.parametrize(
    "line, key, fragments",
    [
        ("  strategy: fsdp", "trainer.strategy", ["'fsdp'", "'ddp'", "'ddp_spawn'"]),
        ("  on_nonfinite: ignore", "trainer.on_nonfinite", ["'ignore'", "'prune'", "'fail'"]),
    ],
)
def test_a_bad_value_names_the_file_line_key_and_choices(
    tmp_path: Path, line: str, key: str, fragments: list[str]
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: demo\ntask: {name: markov_gpt}\ntrainer:\n" + line + "\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 4: {key}: ")
    for fragment in fragments:
        assert fragment in message, message
