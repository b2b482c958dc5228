"""Sample mode: the knobs derived from the gates span exactly the declared structures; records."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.structure import apply_structure
from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import GateRecorder
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import set_gate_mode
from optuna_bigmodel.structure import Structure
from optuna_bigmodel.structure import structure_knobs
from optuna_bigmodel.structure import structure_record
from optuna_bigmodel.structure import UnitGate
from optuna_bigmodel.study._samplers import grid_points

from tests.structure._structure_helpers import make_gpt
from tests.structure._structure_helpers import make_mlp


def declared_structures(model: nn.Module) -> list[tuple]:
    """Every structure the gate declarations allow, by brute force: a unit gate keeps its first
    n units for each n from min_kept to n_units, a choice takes any candidate."""
    options = []
    for name, gate in named_gates(model):
        if isinstance(gate, ChoiceGate):
            options.append([(name, c) for c in gate.names])
        else:
            counts = range(gate.min_kept, gate.n_units + 1)
            options.append([(name, tuple(range(n))) for n in counts])
    return list(itertools.product(*options))


def current_structure(model: nn.Module) -> tuple:
    return tuple(
        (name, gate.chosen() if isinstance(gate, ChoiceGate) else tuple(gate.kept_units()))
        for name, gate in named_gates(model)
    )


@pytest.mark.parametrize("make", [make_gpt, make_mlp], ids=["gpt", "mlp"])
def test_the_grid_over_the_derived_knobs_is_the_declared_space(make) -> None:
    model = make()
    points = grid_points(structure_knobs(model))
    reached = []
    for params in points:
        apply_structure(model, {**params, "lr": 0.1})  # other knobs of the trial are ignored
        reached.append(current_structure(model))
    declared = declared_structures(model)
    assert len(reached) == len(set(reached)) == len(declared)
    assert set(reached) == set(declared)


def test_gpt_knobs_count_heads_and_channel_groups_and_choose_activations() -> None:
    knobs = {knob.name: knob for knob in structure_knobs(make_gpt())}
    assert list(knobs) == [
        "blocks.0.attn.heads_gate", "blocks.0.mlp.activation", "blocks.0.mlp.channels_gate",
        "blocks.1.attn.heads_gate", "blocks.1.mlp.activation", "blocks.1.mlp.channels_gate",
        "blocks_gate",
    ]  # fmt: skip
    assert knobs["blocks.0.mlp.channels_gate"].grid_values() == [1, 2, 3]
    assert knobs["blocks.0.mlp.activation"].grid_values() == ["gelu", "relu", "silu"]
    assert all(knob.axis == "structure" and knob.is_sampled for knob in knobs.values())


def test_gates_with_one_option_give_no_knob_and_wide_gates_a_full_grid() -> None:
    model = nn.ModuleDict({"one": UnitGate(3, min_kept=3), "only": ChoiceGate(["a"]),
                           "wide": UnitGate(150)})  # fmt: skip
    (knob,) = structure_knobs(model)
    assert knob.name == "wide" and knob.grid_values() == list(range(1, 151))
    apply_structure(model, {"wide": 7})
    assert model.one.kept_units() == [0, 1, 2] and model.only.chosen() == "a"
    assert model.wide.kept_units() == list(range(7))


@pytest.mark.parametrize(
    "structure, message",
    [
        ({"blocks_gate": 1}, "params lack the structure knobs ['blocks.0.attn.heads_gate'"),
        (Structure({"blocks_gate": (0,)}), "structure lacks the gates ['blocks.0.attn.heads_gate'"),
        (Structure({"block_gate": (0,)}), "gate 'block_gate' (did you mean 'blocks_gate'?)"),
    ],
)
def test_apply_structure_rejects_incomplete_or_unknown_structures(structure, message) -> None:
    with pytest.raises(BadInputError) as error:
        apply_structure(make_gpt(), structure)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("blocks_gate", 3, "knob 'blocks_gate': got 3 (an integer); expected an integer in [1, 2]"),
        ("blocks_gate", True, "got True (a boolean)"),
        ("blocks.0.mlp.activation", "tanh", "expected one of 'gelu', 'relu', 'silu'"),
    ],
)
def test_apply_structure_rejects_values_outside_the_space(name, value, message) -> None:
    model = make_gpt()
    params = {knob.name: knob.grid_values()[0] for knob in structure_knobs(model)}
    with pytest.raises(BadInputError) as error:
        apply_structure(model, {**params, name: value})
    assert message in str(error.value)


def test_structure_record_gives_every_unit_its_keep_probability() -> None:
    model = make_gpt()
    model.blocks[0].attn.heads_gate.fix([1])
    model.blocks[0].mlp.activation.learn()
    record = structure_record(model, step=4)
    probs = record["keep_probs"]
    assert record["step"] == 4
    assert probs["blocks.0.attn.heads_gate[0]"] == 0.0 and probs["blocks_gate[1]"] == 1.0
    assert probs["blocks.0.mlp.activation[relu]"] == pytest.approx(1 / 3)
    assert len(probs) == 2 + 2 * (2 + 3 + 3)


def test_recorder_subsamples_evenly_and_keeps_the_final_value() -> None:
    model = make_gpt()
    set_gate_mode(model, "learn")
    recorder = GateRecorder(max_points=50)
    logits = model.blocks_gate.logits
    for step in range(1000):
        with torch.no_grad():
            logits.fill_(step / 100)
        recorder.record(model, step)
    trajectory = recorder.trajectories["blocks_gate[0]"]
    steps = [step for step, _ in trajectory]
    assert 25 <= len(steps) <= 50 and steps[0] == 0
    assert len({b - a for a, b in zip(steps, steps[1:])}) == 1  # evenly spaced
    last = torch.sigmoid(torch.tensor(9.99)).item()
    assert recorder.final["blocks_gate[0]"] == pytest.approx(last)
    state = recorder.state_dict()
    again = GateRecorder()
    again.load_state_dict(json.loads(json.dumps(state)))
    assert again.trajectories == recorder.trajectories and again.stride == recorder.stride


def test_trial_attr_is_json_and_marks_what_the_structure_keeps() -> None:
    model = make_gpt()
    set_gate_mode(model, "learn")
    with torch.no_grad():
        model.blocks[1].attn.heads_gate.logits.copy_(torch.tensor([-2.0, 2.0]))
        model.blocks[1].mlp.activation.logits.copy_(torch.tensor([0.0, 0.0, 1.0]))
    recorder = GateRecorder()
    recorder.record(model, step=0)
    recorder.record(model, step=1)
    structure = discretise(model, target=0.8)
    attr = json.loads(json.dumps(recorder.trial_attr(structure)))
    heads = [attr["gates"][f"blocks.1.attn.heads_gate[{i}]"] for i in (0, 1)]
    assert [h["kept"] for h in heads] == [False, True]
    assert heads[1]["trajectory"] == [[0, heads[1]["final"]], [1, heads[1]["final"]]]
    assert attr["gates"]["blocks.1.mlp.activation[silu]"]["kept"] is True
    assert attr["params_before"] == structure.params_before
    assert attr["params_after"] == structure.params_after <= 0.8 * structure.params_before
    assert attr["collapse"] == []
