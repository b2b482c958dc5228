"""Every bad study file fails with a message naming the file, line, key path, value and expectation."""

from __future__ import annotations

from pathlib import Path
import pickle
from typing import Any

import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.spec import load_spec
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.spec import SpecError


# A valid file; each case below replaces whole lines, so every other line keeps its number.
BASE = [
    "name: demo",                                                    # 1
    "task:",                                                         # 2
    "  name: markov_gpt",                                            # 3
    "  model: {d_model: 32}",                                        # 4
    "knobs:",                                                        # 5
    "  lr: {axis: strategy, low: 1.0e-4, high: 0.3, log: true}",     # 6
    "  opt: {axis: strategy, choices: [adam, sgd]}",                 # 7
    "sampler: tpe",                                                  # 8
    "pruner: none",                                                  # 9
    "trainer:",                                                      # 10
    "  max_steps: 200",                                              # 11
    "budget:",                                                       # 12
    "  n_trials: 4",                                                 # 13
]  # fmt: skip


def _text(edits: dict[int, str]) -> str:
    lines = list(BASE)
    for number, line in edits.items():
        lines[number - 1] = line
    return "\n".join(lines) + "\n"


# (id, {line number: new line}, line of the error, key path, fragments the message must contain)
CASES = [
    ("n_trials_not_int", {13: "  n_trials: ten"}, 13, "budget.n_trials", ["'ten'", "an integer >= 1"]),
    ("n_trials_zero", {13: "  n_trials: 0"}, 13, "budget.n_trials", ["got 0", "an integer >= 1"]),
    ("n_trials_negative", {13: "  n_trials: -3"}, 13, "budget.n_trials", ["got -3", ">= 1"]),
    ("n_trials_bool", {13: "  n_trials: true"}, 13, "budget.n_trials", ["True", "a boolean", "an integer"]),
    ("n_trials_float", {13: "  n_trials: 2.5"}, 13, "budget.n_trials", ["2.5", "an integer"]),
    ("timeout_zero", {13: "  timeout: 0"}, 13, "budget.timeout", ["got 0", "a number > 0"]),
    ("timeout_text", {13: "  timeout: soon"}, 13, "budget.timeout", ["'soon'", "a number > 0"]),
    ("no_budget", {13: "  timeout: null"}, 12, "budget", ["none of n_trials, timeout, compute_steps", "at least one"]),
    ("budget_unknown_key", {13: "  n_trial: 4"}, 13, "budget.n_trial", ["'n_trial'", "did you mean 'n_trials'", "timeout"]),
    ("budget_not_mapping", {12: "budget: 5", 13: "seed: 1"}, 12, "budget", ["got 5", "a mapping"]),
    ("low_not_number", {6: "  lr: {axis: strategy, low: abc, high: 0.3}"}, 6, "knobs.lr.low", ["'abc'", "a string", "a finite number"]),
    ("low_bool", {6: "  lr: {axis: strategy, low: false, high: 0.3}"}, 6, "knobs.lr.low", ["False", "a finite number"]),
    ("low_ge_high", {6: "  lr: {axis: strategy, low: 0.5, high: 0.3}"}, 6, "knobs.lr.high", ["high=0.3", "low=0.5", "high > low"]),
    ("log_needs_positive_low", {6: "  lr: {axis: strategy, low: 0.0, high: 0.3, log: true}"}, 6, "knobs.lr.low", ["got 0.0", "low > 0"]),
    ("step_with_log", {6: "  lr: {axis: strategy, low: 0.1, high: 0.3, log: true, step: 0.1}"}, 6, "knobs.lr.step", ["log"]),
    ("step_not_dividing", {6: "  lr: {axis: strategy, low: 0, high: 10, step: 3}"}, 6, "knobs.lr.step", ["step=3", "divides"]),
    ("missing_high", {6: "  lr: {axis: strategy, low: 0.1}"}, 6, "knobs.lr.high", ["missing", "'low' and 'high'"]),
    ("no_space", {6: "  lr: {axis: strategy}"}, 6, "knobs.lr", ["'choices' or 'low' and 'high'"]),
    ("empty_choices", {7: "  opt: {axis: strategy, choices: []}"}, 7, "knobs.opt.choices", ["got []", "a non-empty list"]),
    ("choices_not_list", {7: "  opt: {axis: strategy, choices: adam}"}, 7, "knobs.opt.choices", ["'adam'", "a non-empty list"]),
    ("duplicate_choice", {7: "  opt: {axis: strategy, choices: [adam, sgd, adam]}"}, 7, "knobs.opt.choices[2]", ["'adam'", "distinct"]),
    ("choices_and_range", {7: "  opt: {axis: strategy, choices: [1, 2], low: 1}"}, 7, "knobs.opt.low", ["either 'choices' or 'low' and 'high'"]),
    ("unknown_knob_field", {6: "  lr: {axis: strategy, lwo: 0.1, high: 0.3}"}, 6, "knobs.lr.lwo", ["'lwo'", "did you mean 'low'", "axis"]),
    ("missing_axis", {6: "  lr: {low: 0.1, high: 0.3}"}, 6, "knobs.lr", ["missing required field 'axis'", "'strategy'"]),
    ("bad_axis", {6: "  lr: {axis: strategie, low: 0.1, high: 0.3}"}, 6, "knobs.lr.axis", ["'strategie'", "did you mean 'strategy'", "'parameter'"]),
    ("learn_mode_structure", {6: "  lr: {axis: structure, mode: learn, low: 1, high: 3}"}, 6, "knobs.lr.mode", ["'learn'", "'structure:' section"]),
    ("learn_mode_with_log", {6: "  lr: {axis: strategy, mode: learn, low: 0.1, high: 0.3, log: true}"}, 6, "knobs.lr.log", ["only 'low', 'high' and 'init'"]),
    ("learn_init_outside", {6: "  lr: {axis: strategy, mode: learn, low: 0.1, high: 0.3, init: 0.5}"}, 6, "knobs.lr.init", ["0.5", "[0.1, 0.3]"]),
    ("learn_zero_low", {6: "  lr: {axis: strategy, mode: learn, low: 0, high: 0.3}"}, 6, "knobs.lr.low", ["> 0", "log scale"]),
    ("bad_mode", {6: "  lr: {axis: strategy, mode: sampel, low: 0.1, high: 0.3}"}, 6, "knobs.lr.mode", ["'sampel'", "did you mean 'sample'"]),
    ("fixed_with_range", {6: "  lr: {axis: strategy, mode: fixed, value: 0.1, low: 0.0}"}, 6, "knobs.lr.low", ["fixed", "only 'value'"]),
    ("fixed_without_value", {6: "  lr: {axis: strategy, mode: fixed}"}, 6, "knobs.lr.value", ["missing", "'value'"]),
    ("grid_outside_range", {6: "  lr: {axis: strategy, low: 0.1, high: 0.3, grid: [0.2, 0.5]}"}, 6, "knobs.lr.grid[1]", ["0.5", "[0.1, 0.3]"]),
    ("grid_points_too_few", {6: "  lr: {axis: strategy, low: 0.1, high: 0.3, grid_points: 1}"}, 6, "knobs.lr.grid_points", ["got 1", "an integer >= 2"]),
    ("knob_not_mapping", {6: "  lr: 0.1"}, 6, "knobs.lr", ["got 0.1", "a mapping"]),
    ("unknown_sampler", {8: "sampler: tpee"}, 8, "sampler", ["'tpee'", "did you mean 'tpe'", "random", "grid"]),
    ("sampler_not_name", {8: "sampler: 3"}, 8, "sampler", ["got 3", "a name"]),
    ("unknown_sampler_kwarg", {8: "sampler: {name: tpe, kwargs: {n_startup: 3}}"}, 8, "sampler.kwargs.n_startup", ["'n_startup'", "'tpe'", "did you mean 'n_startup_trials'", "seed"]),
    ("sampler_unknown_key", {8: "sampler: {name: tpe, kwarg: {}}"}, 8, "sampler.kwarg", ["'kwarg'", "did you mean 'kwargs'"]),
    ("grid_search_space_reserved", {8: "sampler: {name: grid, kwargs: {search_space: {}}}"}, 8, "sampler.kwargs.search_space", ["'search_space'", "'grid'"]),
    ("grid_without_sampled_knobs", {6: "  lr: {axis: strategy, mode: fixed, value: 0.1}", 7: "  opt: {axis: strategy, mode: fixed, value: adam}", 8: "sampler: grid"}, 8, "sampler", ["'grid'", "at least one knob in sample mode"]),
    ("brute_force_continuous", {8: "sampler: brute_force"}, 6, "knobs.lr.step", ["brute_force", "discrete"]),
    ("unknown_pruner", {9: "pruner: medain"}, 9, "pruner", ["'medain'", "did you mean 'median'", "hyperband"]),
    ("percentile_needs_percentile", {9: "pruner: percentile"}, 9, "pruner.kwargs", ["'percentile'", "needs"]),
    ("threshold_needs_bound", {9: "pruner: {name: threshold, kwargs: {n_warmup_steps: 2}}"}, 9, "pruner.kwargs", ["'lower' or 'upper'"]),
    ("unknown_pruner_kwarg", {9: "pruner: {name: median, kwargs: {warmup: 2}}"}, 9, "pruner.kwargs.warmup", ["'warmup'", "'median'", "n_warmup_steps"]),
    ("unknown_wrapped_pruner", {9: "pruner: {name: patient, kwargs: {patience: 2, wrapped: medianx}}"}, 9, "pruner.kwargs.wrapped", ["'medianx'", "did you mean 'median'"]),
    ("unknown_top_key", {9: "prunner: none"}, 9, "prunner", ["'prunner'", "did you mean 'pruner'", "budget"]),
    ("unknown_task_key", {3: "  nmae: markov_gpt"}, 3, "task.nmae", ["'nmae'", "did you mean 'name'"]),
    ("missing_task_name", {3: "  data: {}"}, 2, "task", ["missing required key 'name'"]),
    ("task_name_not_string", {3: "  name: 12"}, 3, "task.name", ["got 12", "a built-in task name"]),
    ("model_value_mapping", {4: "  model: {d_model: {a: 1}}"}, 4, "task.model.d_model", ["{'a': 1}", "a mapping", "null, list"]),
    ("unknown_trainer_key", {11: "  max_step: 20"}, 11, "trainer.max_step", ["'max_step'", "did you mean 'max_steps'"]),
    ("max_steps_zero", {11: "  max_steps: 0"}, 11, "trainer.max_steps", ["got 0", ">= 1"]),
    ("max_steps_unbounded", {11: "  max_steps: -1"}, 11, "trainer.max_steps", ["-1", "max_epochs"]),
    ("val_check_after_end", {11: "  val_check_interval: 300"}, 11, "trainer.val_check_interval", ["got 300", "more than trainer.max_steps (200)", "[1, 200]"]),
    ("devices_zero", {11: "  devices: 0"}, 11, "trainer.devices", ["got 0", ">= 1"]),
    ("bad_accelerator", {11: "  accelerator: tpu"}, 11, "trainer.accelerator", ["'tpu'", "'cuda'"]),
    ("bad_precision", {11: "  precision: 8"}, 11, "trainer.precision", ["got 8", "'bf16-mixed'"]),
    ("progress_bar_not_bool", {11: "  progress_bar: maybe"}, 11, "trainer.progress_bar", ["'maybe'", "true or false"]),
    ("seed_bool", {9: "seed: true"}, 9, "seed", ["True", "a boolean", "an integer"]),
    ("seed_negative", {9: "seed: -1"}, 9, "seed", ["got -1", "from 0"]),
    ("bad_direction", {9: "direction: maximise"}, 9, "direction", ["'maximise'", "did you mean 'maximize'"]),
    ("bad_study_name", {1: "name: my study"}, 1, "name", ["'my study'", "letters, digits"]),
    ("bad_storage", {9: "storage: not a url"}, 9, "storage", ["'not a url'", "database URL"]),
    ("empty_metric", {9: "metric: ''"}, 9, "metric", ["''", "metric"]),
    ("duplicate_key", {9: "sampler: random"}, 9, "sampler", ["written twice", "first on line 8"]),
    ("non_string_key", {9: "3: x"}, 9, "3", ["got 3", "a string key"]),
]  # fmt: skip


@pytest.mark.parametrize("edits, line, key_path, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_names_file_line_path_value_and_expectation(
    tmp_path: Path, edits: dict[int, str], line: int, key_path: str, fragments: list[str]
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(_text(edits))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    err, message = info.value, str(info.value)
    assert isinstance(err, BadInputError) and err.exit_code == 2
    assert err.source == str(path) and message.startswith(f"{path}, line {line}: {key_path}: ")
    assert err.line == line
    for fragment in fragments:
        assert fragment in message, message


def test_base_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(_text({}))
    assert load_spec(path).name == "demo"


@pytest.mark.parametrize(
    "text, line, fragments",
    [
        ("", 1, ["empty", "'name' and 'task'"]),
        ("# nothing here\n\n", 1, ["empty"]),
        ("- name: a\n- task: b\n", 1, ["(a list)", "a mapping of study settings"]),
        ("just a string\n", 1, ["'just a string'", "a mapping of study settings"]),
        ("name: a\ntask: {name: t\n", 3, ["not valid YAML", "expected valid YAML"]),
        ("name: a\ntask:\n  name: t\n\tbad: 1\n", 4, ["not valid YAML", "'\\t'"]),
        ("name: a\n  model: 1\n", 2, ["not valid YAML", "mapping values are not allowed"]),
        ("name: a\nbudget: {n_trials: 2}\n", 1, ["missing required key 'task'"]),
        ("name: !!python/object:os.system x\n", 1, ["not valid YAML"]),
        ("name: a\ntask: {name: t}\nmetric: \x07\n", 3, ["not valid YAML", "#x0007"]),
    ],
    ids=[
        "empty", "comments_only", "list", "scalar", "unclosed_brace", "tab", "bad_indent",
        "missing_task", "unsafe_tag", "control_character",
    ],
)
def test_bad_whole_file(tmp_path: Path, text: str, line: int, fragments: list[str]) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}, line {line}: ")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="nope.yaml: cannot read the study file") as info:
        load_spec(path)
    assert info.value.line is None


def test_error_from_a_mapping_names_dict_and_no_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "a", "task": {"name": "t"}, "budget": {"n_trials": 0}})
    assert str(info.value) == "<dict>: budget.n_trials: got 0; expected an integer >= 1"
    assert info.value.line is None and info.value.path == ("budget", "n_trials")


def test_mapping_error_uses_given_source() -> None:
    with pytest.raises(SpecError, match=r"^stored: knobs\.x: got 'oops'"):
        parse_spec({"name": "a", "task": {"name": "t"}, "knobs": {"x": "oops"}}, source="stored")


def test_unknown_key_without_near_match_lists_allowed_keys() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "a", "task": {"name": "t"}, "zzzz": 1})
    message = str(info.value)
    assert "got unknown key 'zzzz'; expected one of: name, direction" in message
    assert "did you mean" not in message


def test_spec_error_survives_pickling() -> None:
    err = SpecError("f.yaml", ("knobs", "lr", "low"), "got 'abc'; expected a number", 6)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "f.yaml, line 6: knobs.lr.low: got 'abc'; expected a number"
    assert (again.source, again.path, again.line, again.detail) == (err.source, err.path, err.line, err.detail)


@pytest.mark.parametrize(
    "knobs, fragments",
    [
        ({"descent": {"axis": "parameter", "choices": ["sgd", "adam"]}}, ["knobs.descent", "'adam'", "'gd'"]),
        ({"descent": {"axis": "parameter", "mode": "fixed", "value": "newton"}}, ["knobs.descent", "'newton'"]),
        ({"warmup": {"axis": "strategy", "low": -5, "high": 10}}, ["knobs.warmup.low", "-5", ">= 0"]),
        ({"lr_init": {"axis": "strategy", "low": 0.01, "high": 0.1}}, ["knobs.lr_init", "'lr' with mode 'learn'"]),
        ({"lr": {"axis": "strategy", "mode": "learn", "low": 1e-3, "high": 0.1},
          "lr_init": {"axis": "strategy", "low": 1e-4, "high": 0.1, "log": True}}, ["knobs.lr_init", "0.0001", "[0.001, 0.1]"]),
        ({"meta_lr": {"axis": "strategy", "choices": [0.01, -1]}}, ["knobs.meta_lr", "-1", "> 0"]),
        ({"mu": {"axis": "strategy", "low": 0.5, "high": 1.5}}, ["knobs.mu", "1.5", "[0, 1]"]),
    ],
)
def test_knobs_of_the_inner_loop_are_checked_when_the_file_is_read(
    knobs: dict[str, Any], fragments: list[str]
) -> None:
    data = {"name": "x", "task": {"name": "markov_gpt"}, "knobs": knobs, "budget": {"n_trials": 1}}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
