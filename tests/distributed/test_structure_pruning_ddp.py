"""StructurePruning under DDP (ddp_spawn, two CPU processes, gloo): both ranks freeze the same units
at the same step, skipped blocks do not break DDP's gradient reduction (which expects a gradient
for every parameter), and only global rank 0 writes the record into the SQLite-stored trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytorch_lightning as pl

from optuna_bigmodel.callbacks import StructurePruning
from optuna_bigmodel.callbacks._structure_pruning import SHUT_LOGIT
from tests.callbacks._gated import Bilevel, data, trainer


class _WriteFrozen(pl.Callback):
    """Writes what each rank froze, and when, to rank<r>.json at the end of its run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        (pruning,) = [c for c in trainer.callbacks if isinstance(c, StructurePruning)]
        events = [event.to_dict() for event in pruning.events]
        path = self.folder / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps({"frozen": pruning.frozen, "events": events}))


def test_ranks_freeze_the_same_units_and_rank_zero_records_them(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage)
    module = Bilevel()
    trial = study.ask()
    callback = StructurePruning(threshold=0.05, patience=3, check_every_n_steps=2, trial=trial)
    run = trainer([callback, _WriteFrozen(tmp_path)], 120, strategy="ddp_spawn", devices=2)
    run.fit(module, data())

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and ranks[0]["frozen"]["net.blocks_gate"]

    (stored,) = optuna.load_study(study_name=study.study_name, storage=storage).trials
    records = stored.user_attrs["structure_pruned"]
    assert records == ranks[0]["events"]
    blocks = [e for e in records if e["gate"] == "net.blocks_gate"]
    assert len(blocks) == 1 and len(blocks[0]["units"]) == 2
    # ddp_spawn hands rank 0's weights back to this process: the frozen logits came with them.
    assert module.net.blocks_gate.logits[blocks[0]["units"]].eq(SHUT_LOGIT).all()
