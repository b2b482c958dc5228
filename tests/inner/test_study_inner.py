"""The inner loop through whole studies on SQLite: learned knobs and gates recorded in each
trial, and the sample-mode structure space derived from the model's gates, enumerated once."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import optuna
import torch
import pytest

from optuna_bigmodel import run_study
from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.inner import apply_sampled_structure
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import named_gates
from tests.inner._helpers import DATA
from tests.inner._helpers import MODEL
from tests.inner._helpers import tiny_gpt


def _spec(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "inner",
        "seed": 3,
        "task": {"name": "markov_gpt", "model": dict(MODEL), "data": dict(DATA)},
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "run_dir": str(tmp_path / "runs"),
        "trainer": {"max_steps": 12, "val_check_interval": 6, "accelerator": "cpu",
                    "progress_bar": False},
        "budget": {"n_trials": 2},
        "sampler": {"name": "random"},
    }  # fmt: skip
    spec.update(fields)
    return spec


def test_learned_rate_and_gates_are_recorded_in_every_trial(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        knobs={
            "lr": {"axis": "strategy", "mode": "learn", "low": 1e-4, "high": 1.0, "init": 1e-2},
            "warmup": {"axis": "strategy", "low": 0.0, "high": 4.0},
        },
        inner={"descent": "dynamic", "meta_lr": 0.05},
        structure={"mode": "learn", "budget": 0.6},
    )
    study = run_study(parse_spec(spec), progress=False)
    trials = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(trials) == 2
    for trial in trials:
        assert set(trial.params) == {"warmup"}  # the learned rate is no sampled parameter
        attrs = trial.user_attrs
        assert 1e-4 <= attrs["learned"]["lr"]["final"] <= 1.0
        assert attrs["structure"]["params_after"] <= 0.6 * attrs["structure"]["params_before"]
        assert attrs["compute_steps"] == 24 and attrs["descent"] == "dynamic"


def _gate_options(n_layers: int) -> dict[str, list[Any]]:
    """Each gate's options, read off the gates themselves (independently of structure_knobs)."""
    options = {}
    for name, gate in named_gates(tiny_gpt(n_layers=n_layers).module):
        if isinstance(gate, ChoiceGate):
            options[name] = list(gate.names)
        else:
            options[name] = list(range(gate.min_kept, gate.n_units + 1))
    return {name: values for name, values in options.items() if len(values) > 1}


def _structure_grid(tmp_path: Path, structure: dict[str, Any]) -> dict[str, Any]:
    """A grid study over the gates of a 1-layer GPT, 2 steps per trial."""
    return _spec(
        tmp_path,
        task={"name": "markov_gpt", "model": {**MODEL, "n_layers": 1}, "data": dict(DATA)},
        knobs={"lr": {"axis": "strategy", "mode": "fixed", "value": 0.05}},
        structure=structure,
        sampler={"name": "grid"},
        trainer={"max_steps": 2, "val_check_interval": 2, "accelerator": "cpu",
                 "progress_bar": False},
        budget=None,
    )  # fmt: skip


def test_a_grid_over_sampled_structures_enumerates_exactly_the_declared_gates(
    tmp_path: Path,
) -> None:
    study = run_study(parse_spec(_structure_grid(tmp_path, {"mode": "sample"})), progress=False)
    options = _gate_options(1)
    everything = {tuple(zip(options, combo)) for combo in itertools.product(*options.values())}
    seen = [tuple((name, t.params[name]) for name in options) for t in study.trials]
    assert len(everything) == 24 and sorted(seen) == sorted(everything)  # each exactly once
    weights = {t.params["net.blocks.0.mlp.channels_gate"]: t.user_attrs["n_weights"]
               for t in study.trials if t.params["net.blocks.0.attn.heads_gate"] == 2}  # fmt: skip
    # Each kept channel group of 8 (d_ff 32 in 4 groups) adds fc + proj weights: 8*16*2 + 8.
    assert [weights[k + 1] - weights[k] for k in (1, 2, 3)] == [264, 264, 264]


def test_a_sampled_structure_over_the_budget_is_pruned_before_it_trains(tmp_path: Path) -> None:
    structure = {"mode": "sample", "budget": 0.7}
    study = run_study(parse_spec(_structure_grid(tmp_path, structure)), progress=False)
    # Independently: the full model's weights, counted off its parameters, against each trial's.
    full = sum(p.numel() for p in tiny_gpt(n_layers=1).module.net.parameters())
    assert len(study.trials) == 24
    for trial in study.trials:
        over = trial.user_attrs["n_weights"] > 0.7 * full
        expected = optuna.trial.TrialState.PRUNED if over else optuna.trial.TrialState.COMPLETE
        assert trial.state == expected
        assert ("over_budget" in trial.user_attrs) == over
        assert trial.intermediate_values == ({} if over else {2: pytest.approx(trial.value)})
    states = {t.state for t in study.trials}
    assert states == {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE}


def test_a_knob_that_reshapes_the_model_under_sampled_structure_is_a_clear_error() -> None:
    # The space was derived from a 1-layer model; a trial whose n_layers knob gives 2 layers
    # has gates without a value.
    params = {"n_layers": 2, **{name: values[0] for name, values in _gate_options(1).items()}}
    with pytest.raises(BadInputError, match="a sampled knob changes the model's shape"):
        apply_sampled_structure(tiny_gpt(n_layers=2).module, params)


def test_early_stopping_ends_a_trial_whose_metric_stops_improving(tmp_path: Path) -> None:
    # A rate far below float32 resolution leaves the weights, and so val_loss, exactly as they are.
    spec = _spec(
        tmp_path,
        knobs={"lr": {"axis": "strategy", "mode": "fixed", "value": 1e-12}},
        trainer={"max_steps": 40, "val_check_interval": 4, "accelerator": "cpu",
                 "progress_bar": False, "early_stopping": 1},
        budget={"n_trials": 1},
    )  # fmt: skip
    (trial,) = run_study(parse_spec(spec), progress=False).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [4, 8]  # no improvement at 8: patience 1 spent


def test_test_at_end_scores_the_trained_model_on_the_test_split(tmp_path: Path) -> None:
    # At a rate below float32 resolution the trained model is its initialisation, which the
    # trial's seed rebuilds: its test loss, computed here by hand, is what the trial must record.
    spec = _spec(
        tmp_path,
        knobs={"lr": {"axis": "strategy", "mode": "fixed", "value": 1e-12}},
        trainer={"max_steps": 4, "val_check_interval": 4, "accelerator": "cpu",
                 "progress_bar": False, "test_at_end": True},
        budget={"n_trials": 1},
    )  # fmt: skip
    (trial,) = run_study(parse_spec(spec), progress=False).trials
    build = tiny_gpt(seed=trial.user_attrs["seed"], lr=1e-12)
    build.datamodule.setup()
    x, y = build.datamodule._dataset("test").tensors
    with torch.no_grad():
        logits = build.module.net.eval()(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 8), y.reshape(-1))
    assert trial.user_attrs["test"]["test_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert 0.0 <= trial.user_attrs["test"]["test_acc"] <= 1.0


def test_structure_pruning_freezes_units_during_a_learned_structure_trial(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        knobs={"lr": {"axis": "strategy", "mode": "fixed", "value": 0.05}},
        structure={"mode": "learn", "budget": 0.3, "gate_lr": 0.3, "warmup_fraction": 0.0,
                   "discretise_at": 1.0, "prune_below": 0.45},
        trainer={"max_steps": 60, "val_check_interval": 30, "accelerator": "cpu",
                 "progress_bar": False},
        budget={"n_trials": 1},
    )  # fmt: skip
    (trial,) = run_study(parse_spec(spec), progress=False).trials
    pruned = trial.user_attrs["structure_pruned"]
    assert pruned, "no unit stayed below 0.45 for 3 checks under a 30% budget"
    final = trial.user_attrs["structure"]["structure"]
    kept = {**final["gates"], **{name: [choice] for name, choice in final["choices"].items()}}
    for event in pruned:  # a unit frozen shut is not in the final structure
        assert not set(event["units"]) & set(kept[event["gate"]])


def test_an_outer_search_picks_where_learned_knobs_start_and_the_meta_rate(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        knobs={
            "lr": {"axis": "strategy", "mode": "learn", "low": 1e-4, "high": 1.0},
            "lr_init": {"axis": "strategy", "choices": [1e-3, 0.5]},
            "meta_lr": {"axis": "strategy", "choices": [0.0, 0.05]},
        },
        inner={"descent": "dynamic", "meta_lr": 0.05},
        sampler={"name": "grid"},
        budget=None,
    )
    with pytest.raises(BadInputError, match=r"knobs.meta_lr.*0.0.*> 0"):
        parse_spec(spec)
    spec["knobs"]["meta_lr"] = {"axis": "strategy", "choices": [1e-12, 0.05]}
    study = run_study(parse_spec(spec), progress=False)
    assert len(study.trials) == 4
    for trial in study.trials:
        learned = trial.user_attrs["learned"]["lr"]
        assert learned["trajectory"][0][1] == pytest.approx(trial.params["lr_init"], rel=1e-6)
        if trial.params["meta_lr"] == 1e-12:  # a meta-rate this small leaves the rate where it began
            assert learned["final"] == pytest.approx(trial.params["lr_init"], rel=1e-6)
        else:
            assert learned["final"] != pytest.approx(trial.params["lr_init"], rel=1e-3)


def test_sampled_choices_give_one_run_per_candidate_while_the_unit_gates_learn(
    tmp_path: Path,
) -> None:
    spec = _structure_grid(tmp_path, {"mode": "learn", "budget": 0.8, "choices": "sample"})
    spec["trainer"] = {"max_steps": 8, "val_check_interval": 8, "accelerator": "cpu",
                       "progress_bar": False}  # fmt: skip
    study = run_study(parse_spec(spec), progress=False)
    name = "net.blocks.0.mlp.activation"
    options = _gate_options(1)
    assert sorted(t.params[name] for t in study.trials) == sorted(options[name])  # each once
    for trial in study.trials:
        assert set(trial.params) == {name}  # unit gates are not sampled: they learn
        record = trial.user_attrs["structure"]
        assert record["structure"]["choices"] == {name: trial.params[name]}
        assert record["params_after"] <= 0.8 * record["params_before"]


def test_sampled_choices_need_a_model_with_a_choice_gate(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        task={"name": "digits_mlp", "model": {"hidden": 16, "depth": 1}},
        structure={"mode": "learn", "budget": 0.8, "choices": "sample"},
    )
    with pytest.raises(BadInputError, match="choices 'sample'.*no choice gate"):
        run_study(parse_spec(spec), progress=False)
