"""Cost of a training step through our knob machinery against a plain LightningModule.

Network: the built-in ``markov_gpt`` GPT (d_model 64, 2 blocks of 2 heads, d_ff 256, sequences of
32 tokens over 16, batch 32), Adam at 3e-3, on the task's own datamodule. Four ways to train it,
each with the same ``pl.Trainer`` flags (those of a study trial: no logger, no checkpointing, no
progress bar, ``deterministic=True``, validation off):

- ``plain``: a ``pl.LightningModule`` written here (a cross-entropy ``training_step`` that logs
  ``train_loss``, ``torch.optim.Adam`` over its parameters) holding a copy of the built-in GPT with
  its gates off, as they are by default (the same maths as a gate-free GPT);
- ``plain_nogates``: the same plain module holding a gate-free GPT written here (nanoGPT, no gate
  modules at all) with the built-in network's initial weights (its outputs are checked equal to
  the gated network's at start): a stricter baseline, which also charges the off gates to us;
- ``fixed``: our path with every knob ``mode: fixed`` (lr, optimiser, weight decay, sizes): the
  module, data and callbacks from ``optuna_bigmodel.inner.prepare_trial`` as a study trial gets
  them, plus ``OptunaPruning`` on an in-memory Optuna trial (it checks the loss every step);
- ``learned``: lr ``mode: learn`` with ``inner.descent: dynamic`` and ``structure: {mode: learn,
  budget: 0.5}``, through ``prepare_trial`` too (its callbacks include ``BilevelTuning``), plus
  ``OptunaPruning``. Each step also takes one search batch (a second forward and backward, for
  the hypergradient of the rate and the gates) until the gates are discretised at 75% of the run,
  and for the rate to the end.

A timer callback (first in the list) stamps ``on_train_batch_start``; a step's time is the gap to
the next stamp, so it holds everything the step costs (data, every callback, forward, backward,
optimiser, the search batch). The first ``--warmup`` steps of each run are dropped. Runs are
interleaved in rounds (every variant once per round, in a rotating order), and each
variant's figure is the median over rounds of its per-run mean step time, by the CPU time of the
training thread (the headline: the machine is shared, and wall time also counts the time other
jobs hold the core) and by the wall clock.

With ``--breakdown`` two more variants say where the cost of ``fixed`` goes: ``module_only``
(our module and data from ``prepare_trial``, no callbacks: ``fixed`` without ``OptunaPruning``)
and ``ours_nogates`` (our module class, ``CrossEntropyModule``, holding the gate-free GPT).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/knob_overhead.py [--steps 150] [--rounds 15]
                                                                   [--breakdown]
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import time
from typing import Any
import warnings

import optuna
import pytorch_lightning as pl
import torch
from torch import nn
import torch.nn.functional as F

from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.inner import BilevelTuning
from optuna_bigmodel.inner import prepare_trial
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.tasks._module import CrossEntropyModule
from optuna_bigmodel.tasks import resolve_task


TASK = "markov_gpt"
MODEL: dict[str, Any] = {"d_model": 64, "n_layers": 2, "n_heads": 2, "d_ff": 256, "dropout": 0.0}
DATA: dict[str, Any] = {"seq_len": 32, "batch_size": 32}
LR = 3e-3
SEED = 0
VARIANTS = ("plain", "plain_nogates", "fixed", "learned")
BREAKDOWN = ("module_only", "ours_nogates")
CLOCKS = {"cpu": "CPU time of the training thread", "wall": "wall clock"}


# -- the plain side --------------------------------------------------------------------------------


class PlainBlock(nn.Module):
    """A pre-LN transformer block with causal self-attention and a GELU MLP, no gates."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln_1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attn_proj = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, d_ff)
        self.mlp_proj = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H = self.n_heads
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.fc(self.ln_2(x))))


class PlainGPT(nn.Module):
    """nanoGPT: token + position embeddings, blocks, final LayerNorm, tied head."""

    def __init__(self, vocab: int, block: int, d_model: int, n_layers: int, n_heads: int,
                 d_ff: int) -> None:  # fmt: skip
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d_model)
        self.pos_emb = nn.Embedding(block, d_model)
        self.blocks = nn.ModuleList(PlainBlock(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.tok_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    @classmethod
    def copy_of(cls, gated: nn.Module) -> PlainGPT:
        """A plain GPT with the weights of the built-in (gated) one."""
        config = gated.config
        plain = cls(config.vocab_size, config.block_size, config.d_model, config.n_layers,
                    config.n_heads, config.d_ff)  # fmt: skip
        renames = {"attn.qkv": "qkv", "attn.proj": "attn_proj", "mlp.fc": "fc", "mlp.proj": "mlp_proj"}
        state = {}
        for name, value in gated.state_dict().items():
            for old, new in renames.items():
                name = name.replace(f".{old}.", f".{new}.")
            state[name] = value.clone()
        plain.load_state_dict(state, strict=True)
        return plain


class PlainModule(pl.LightningModule):
    """What a user writes without this package: cross-entropy, one log call, Adam."""

    def __init__(self, net: nn.Module, lr: float) -> None:
        super().__init__()
        self.net = net
        self.lr = lr

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


# -- our side --------------------------------------------------------------------------------------


def spec_for(variant: str) -> Any:
    if variant != "learned":
        knobs = {
            "lr": {"axis": "strategy", "mode": "fixed", "value": LR},
            "optimizer": {"axis": "strategy", "mode": "fixed", "value": "adam"},
            "weight_decay": {"axis": "strategy", "mode": "fixed", "value": 0.0},
            "d_model": {"axis": "structure", "mode": "fixed", "value": MODEL["d_model"]},
            "n_layers": {"axis": "structure", "mode": "fixed", "value": MODEL["n_layers"]},
        }
        extra: dict[str, Any] = {}
    else:
        knobs = {
            "lr": {"axis": "strategy", "mode": "learn", "low": 1e-4, "high": 0.1, "init": LR},
            "optimizer": {"axis": "strategy", "mode": "fixed", "value": "adam"},
        }
        extra = {"inner": {"descent": "dynamic"}, "structure": {"mode": "learn", "budget": 0.5}}
    model = {k: v for k, v in MODEL.items() if k not in knobs}
    return parse_spec(
        {
            "name": "knob-overhead",
            "task": {"name": TASK, "model": model, "data": dict(DATA)},
            "knobs": knobs,
            "budget": {"n_trials": 1},
            **extra,
        }
    )


def fixed_params(spec: Any) -> dict[str, Any]:
    """The trial's values: every knob's fixed value (learned knobs are not parameters)."""
    return {knob.name: knob.value for knob in spec.knobs if knob.mode == "fixed"}


# -- timing ----------------------------------------------------------------------------------------


class StepTimer(pl.Callback):
    """Stamps the start of every training batch; a step is the gap to the next stamp.

    Two clocks: the CPU time of this thread (``time.thread_time``: torch runs on this one thread,
    data loading too, so this is what a step costs, and time the thread spends descheduled while
    other jobs run does not count), and the wall clock.
    """

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def _stamp(self) -> None:
        self.cpu.append(time.thread_time())
        self.wall.append(time.perf_counter())

    def on_train_batch_start(self, *args: Any) -> None:
        self._stamp()

    def on_train_end(self, *args: Any) -> None:
        self._stamp()

    def step_times(self, warmup: int, clock: str) -> list[float]:
        stamps = self.cpu if clock == "cpu" else self.wall
        return [b - a for a, b in zip(stamps, stamps[1:])][warmup:]


def build(variant: str) -> tuple[pl.LightningModule, pl.LightningDataModule, list[pl.Callback]]:
    if variant in ("plain", "plain_nogates", "ours_nogates"):
        built = resolve_task(TASK).build({}, MODEL, DATA, SEED)
        gated = built.module.net
        net = copy.deepcopy(gated) if variant == "plain" else PlainGPT.copy_of(gated)
        if variant == "ours_nogates":
            return CrossEntropyModule(net, "adam", LR), built.datamodule, []
        return PlainModule(net, LR), built.datamodule, []
    spec = spec_for(variant)
    prepared = prepare_trial(spec, resolve_task(TASK), fixed_params(spec), SEED, None)
    assert prepared.plan.is_plain == (variant != "learned"), prepared.plan
    has_bilevel = any(isinstance(c, BilevelTuning) for c in prepared.callbacks)
    assert has_bilevel == (variant == "learned")
    if variant == "module_only":
        return prepared.build.module, prepared.build.datamodule, list(prepared.callbacks)
    trial = optuna.create_study().ask()
    pruning = OptunaPruning(trial, spec.metric, on_nonfinite=spec.trainer.on_nonfinite)
    return prepared.build.module, prepared.build.datamodule, [pruning, *prepared.callbacks]


def run(variant: str, steps: int, warmup: int) -> dict[str, float]:
    """Mean seconds per step of one run of ``steps`` steps, by each clock."""
    pl.seed_everything(SEED, workers=True, verbose=False)
    module, datamodule, callbacks = build(variant)
    timer = StepTimer()
    trainer = pl.Trainer(
        max_steps=steps, limit_val_batches=0, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=True, callbacks=[timer, *callbacks],
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == steps
    return {clock: statistics.mean(timer.step_times(warmup, clock)) for clock in CLOCKS}


def check_same_maths() -> None:
    """The plain GPT computes what the built-in one computes with its gates off."""
    gated = resolve_task(TASK).build({}, MODEL, DATA, SEED).module.net
    plain = PlainGPT.copy_of(gated)
    x = torch.randint(0, 16, (4, DATA["seq_len"]), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain(x), gated(x), rtol=1e-5, atol=1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="first steps of a run not timed")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--breakdown", action="store_true", help="add module_only, ours_nogates")
    args = parser.parse_args()
    torch.set_num_threads(1)
    quiet()
    check_same_maths()
    variants = VARIANTS + (BREAKDOWN if args.breakdown else ())
    times: dict[str, dict[str, list[float]]] = {c: {v: [] for v in variants} for c in CLOCKS}
    start = time.perf_counter()
    for round_ in range(args.rounds):
        shift = round_ % len(variants)
        for variant in variants[shift:] + variants[:shift]:  # rotating order
            for clock, value in run(variant, args.steps, args.warmup).items():
                times[clock][variant].append(value)
        print(f"round {round_}: " + ", ".join(
            f"{v} {times['cpu'][v][-1] * 1e3:.2f}" for v in variants
        ) + " ms CPU/step", flush=True)  # fmt: skip
    print(
        f"\n{TASK} {MODEL}, data {DATA}, Adam lr {LR}; {args.steps} steps per run, first "
        f"{args.warmup} not timed, {args.rounds} rounds, {time.perf_counter() - start:.0f} s; "
        f"torch threads {torch.get_num_threads()}"
    )
    for clock in CLOCKS:
        report(clock, times[clock])


def report(clock: str, times: dict[str, list[float]]) -> None:
    median = {v: statistics.median(values) for v, values in times.items()}
    print(f"\n{CLOCKS[clock]}: median over rounds of each run's mean ms per step\n")
    print("| variant | ms/step | / plain | / plain_nogates | per-round ratio to that round's "
          "plain: median (min-max) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for v, values in times.items():
        paired = [t / p for t, p in zip(values, times["plain"])]
        print(
            f"| {v} | {median[v] * 1e3:.2f} | {median[v] / median['plain']:.3f} "
            f"| {median[v] / median['plain_nogates']:.3f} "
            f"| {statistics.median(paired):.3f} ({min(paired):.3f}-{max(paired):.3f}) |"
        )
    for baseline in ("plain", "plain_nogates"):
        ratio = median["fixed"] / median[baseline]
        print(
            f"{clock}: fixed / {baseline} = {ratio:.3f} (target <= 1.03: "
            f"{'met' if ratio <= 1.03 else 'NOT met'}); learned / {baseline} = "
            f"{median['learned'] / median[baseline]:.3f}"
        )
    assert all(math.isfinite(t) for t in median.values())


def quiet() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


if __name__ == "__main__":
    main()
