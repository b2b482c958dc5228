"""StructurePruning in real Lightning runs of a gated residual network whose gates learn through a
hand-written bilevel step: units freeze shut, stay shut, shrink the structure, skip their blocks'
work, respect min_kept, are recorded, and survive a resume."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks import StructurePruning
from optuna_bigmodel.callbacks._skip import install_skip
from optuna_bigmodel.callbacks._structure_pruning import SHUT_LOGIT
from optuna_bigmodel.structure import UnitGate, expected_param_count, named_gates, set_gate_mode
from optuna_bigmodel.tasks._gpt import GPT, GPTConfig
from tests.callbacks._gated import WIDTH, Bilevel, GatedNet, data, trainer

MAX_STEPS = 200  # optimiser steps: 100 batches, two steps each


def _fit(module: Bilevel, max_steps: int = MAX_STEPS, **options) -> StructurePruning:
    callback = StructurePruning(threshold=0.05, patience=3, check_every_n_steps=2, **options)
    trainer([callback], max_steps).fit(module, data())
    return callback


def _frozen_blocks(callback: StructurePruning) -> list[int]:
    return callback.frozen["net.blocks_gate"]


def _remaining_weights(net: GatedNet) -> float:
    """The weights of the structure that is left: frozen units count 0, every other unit 1."""
    masks = {gate: (gate.keep_probs() > 0).double() for _, gate in named_gates(net)}
    return float(expected_param_count(net, masks))


def _forward_flops(net: GatedNet) -> int:
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(16, WIDTH))
    net.train()
    return counter.get_total_flops()


def test_units_below_the_threshold_are_frozen_shut_and_stay_exactly_closed() -> None:
    module = Bilevel()
    callback = _fit(module)
    frozen = _frozen_blocks(callback)
    (event,) = [e for e in callback.events if e.gate == "net.blocks_gate"]
    assert list(event.units) == frozen and len(frozen) == 2
    # Every training forward after the freeze saw the frozen blocks' gates at exactly 0.
    first_after = event.step  # as many forwards before it as optimiser steps: two per batch
    keeps = torch.stack(module.net.keeps[first_after:])
    assert keeps[:, frozen].eq(0).all()
    assert module.net.keeps[first_after - 1][frozen].gt(0).all()
    # Their logits no longer train: exactly where they were frozen, with keep-probability 0.
    gate = module.net.blocks_gate
    assert gate.logits[frozen].eq(SHUT_LOGIT).all()
    assert gate.keep_probs()[frozen].eq(0).all()


def test_min_kept_units_stay_open_even_when_all_are_below_the_threshold() -> None:
    module = Bilevel(min_kept=3)
    callback = _fit(module)
    probs = module.net.blocks_gate.keep_probs().detach()
    assert len(_frozen_blocks(callback)) == 1
    assert probs.lt(callback.threshold).all()  # all qualify; min_kept alone kept three
    assert int(probs.gt(0).sum()) == 3


def test_a_choice_drops_unlikely_candidates_but_keeps_one() -> None:
    module = Bilevel()
    callback = _fit(module)
    dropped = callback.frozen["net.activation"]
    assert 1 <= len(dropped) <= 2
    probs = module.net.activation.keep_probs().detach()
    assert probs[dropped].eq(0).all() and float(probs.sum()) == pytest.approx(1.0)


def test_choices_false_leaves_choices_alone() -> None:
    callback = _fit(Bilevel(), choices=False)
    assert "net.activation" not in callback.frozen


def test_the_parameter_count_of_the_remaining_structure_drops() -> None:
    module = Bilevel()
    before = _remaining_weights(module.net)
    callback = _fit(module)
    frozen = _frozen_blocks(callback)
    block_weights = sum(p.numel() for p in module.net.blocks[0].fc.parameters())
    # A frozen block takes all its weights; frozen channel groups of open blocks take theirs.
    open_blocks = [i for i in range(4) if i not in frozen]
    channel_weights = sum(
        len(callback.frozen.get(f"net.blocks.{i}.channels_gate", [])) * (WIDTH + 1) * WIDTH // 4
        for i in open_blocks
    )
    after = _remaining_weights(module.net)
    assert after == before - len(frozen) * block_weights - channel_weights
    assert after < before


def test_a_step_after_freezing_skips_the_frozen_blocks() -> None:
    module = Bilevel()
    flops_before = _forward_flops(module.net)
    for block in module.net.blocks:
        block.calls = 0
    callback = _fit(module)
    frozen = _frozen_blocks(callback)
    (event,) = [e for e in callback.events if e.gate == "net.blocks_gate"]
    batches_after = (MAX_STEPS - event.step) // 2
    calls = [block.calls for block in module.net.blocks]
    for index, count in enumerate(calls):
        # Two forwards per batch; a frozen block ran once more after freezing, to check that
        # it returns its input, and never again.
        expected = event.step + 1 if index in frozen else MAX_STEPS
        assert count == expected, (index, calls)
    assert batches_after > 10
    # Fewer FLOPs per forward: each frozen block's (B, W) x (W, W) product is gone.
    block_flops = 2 * 16 * WIDTH * WIDTH
    assert _forward_flops(module.net) == flops_before - len(frozen) * block_flops


def test_removals_are_recorded_in_the_trial() -> None:
    study = optuna.create_study()
    trial = study.ask()
    callback = _fit(Bilevel(), trial=trial)
    stored = study.trials[0].user_attrs["structure_pruned"]
    assert stored == [event.to_dict() for event in callback.events]
    assert {"gate": "net.blocks_gate", "units": _frozen_blocks(callback)} in [
        {"gate": e["gate"], "units": e["units"]} for e in stored
    ]
    assert all(isinstance(e["step"], int) and e["step"] > 0 for e in stored)


def test_a_resumed_run_keeps_its_frozen_units(tmp_path: Path) -> None:
    first = Bilevel()
    callback = StructurePruning(threshold=0.05, patience=3, check_every_n_steps=2)
    run = trainer([callback], 96)  # three whole epochs of 16 batches, two steps each
    run.fit(first, data())
    assert _frozen_blocks(callback)
    run.save_checkpoint(tmp_path / "half.ckpt")

    second = Bilevel()
    resumed = StructurePruning(threshold=0.05, patience=3, check_every_n_steps=2)
    trainer([resumed], MAX_STEPS).fit(second, data(), ckpt_path=tmp_path / "half.ckpt")
    assert resumed.events[: len(callback.events)] == callback.events
    frozen = _frozen_blocks(callback)
    assert set(frozen) <= set(_frozen_blocks(resumed))
    assert second.net.blocks_gate.logits[frozen].eq(SHUT_LOGIT).all()
    for index, block in enumerate(second.net.blocks):
        assert block.calls == (1 if index in frozen else MAX_STEPS - 96)


def test_a_module_that_is_not_a_residual_block_keeps_running() -> None:
    branch = nn.Linear(3, 3)
    gate = UnitGate(1, unit_size=3, owns=[[branch]], min_kept=0).learn()
    with torch.no_grad():
        gate.logits[:] = SHUT_LOGIT
    skip = install_skip(branch, gate, 0, "branch", keep_in_graph=False)
    x = torch.ones(2, 3)
    with pytest.warns(UserWarning, match="does not return its input"):
        first = gate(branch(x))
    assert torch.equal(branch(x), nn.functional.linear(x, branch.weight, branch.bias))
    assert torch.equal(first, torch.zeros(2, 3)) and skip.skipped == 0


def test_a_frozen_block_stays_skipped_while_its_gate_shuts_it_and_runs_otherwise() -> None:
    net = GatedNet()
    net.blocks_gate.learn()
    with torch.no_grad():
        net.blocks_gate.logits[0] = SHUT_LOGIT
    install_skip(net.blocks[0], net.blocks_gate, 0, "block 0", keep_in_graph=False)
    x = torch.randn(4, WIDTH)
    net(x), net(x)
    assert net.blocks[0].calls == 1  # checked once, then skipped
    net.blocks_gate.fix([1, 2, 3])  # discretised: the frozen unit dropped
    net(x)
    assert net.blocks[0].calls == 1
    net.blocks_gate.fix([0, 1])  # a structure that keeps it
    net(x)
    net.blocks_gate.off()
    net(x)
    assert net.blocks[0].calls == 3


def test_without_learned_gates_it_warns_and_does_nothing() -> None:
    module = Bilevel()
    for _, gate in named_gates(module.net):
        gate.off()
    module.configure_optimizers = lambda: [torch.optim.SGD(module.parameters(), lr=0.01)] * 2
    with pytest.warns(UserWarning, match="no gate of the model is in learn mode"):
        callback = _fit(module, max_steps=8)
    assert callback.events == [] and callback.frozen == {}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"threshold": 0.0}, "threshold: expected a number in"),
        ({"threshold": 1.5}, "threshold: expected a number in"),
        ({"patience": 0}, "patience: expected an integer >= 1"),
        ({"check_every_n_steps": True}, "check_every_n_steps: expected an integer >= 1"),
        ({"choices": "yes"}, "choices: expected True or False"),
    ],
)
def test_bad_arguments_are_refused_by_name(options: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        StructurePruning(**options)


def test_a_frozen_block_of_the_built_in_gpt_is_skipped_with_the_same_output() -> None:
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_layers=3, n_heads=2, d_ff=12))
    set_gate_mode(gpt.eval(), "learn")
    with torch.no_grad():
        gpt.blocks_gate.logits[1] = SHUT_LOGIT
    tokens = torch.randint(0, 7, (2, 6), generator=torch.Generator().manual_seed(1))

    def flops_and_output() -> tuple[int, torch.Tensor]:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = gpt(tokens)
        return counter.get_total_flops(), out

    flops_running, expected = flops_and_output()
    skip = install_skip(gpt.blocks[1], gpt.blocks_gate, 1, "block 1", keep_in_graph=False)
    flops_and_output()  # the first call checks that the shut block returns its input
    flops_skipping, out = flops_and_output()
    assert skip.returns_input and skip.skipped == 1
    assert torch.equal(out, expected)
    assert flops_skipping < flops_running
