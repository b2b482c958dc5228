"""Train / val / test sequences sampled from a :class:`MarkovSource`, as a LightningDataModule."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_bigmodel.tasks._markov_source import MarkovSource
from optuna_bigmodel.tasks._search_split import SearchSplitMixin


SPLITS = ("train", "val", "test")

# Validation runs often during training; in a few large batches it costs little.
EVAL_BATCH_SIZE = 512


class MarkovDataModule(SearchSplitMixin, pl.LightningDataModule):
    """Sequences of ``seq_len + 1`` tokens; a batch is ``(x, y) = (seq[:, :-1], seq[:, 1:])``.

    The sequences depend only on ``source`` and ``data_seed``; each split has its own random
    stream, so changing ``n_train`` leaves the val and test sequences as they were.
    ``shuffle_seed`` (the trial's seed) orders the training batches.

    Args:
        source: The source the sequences come from.
        seq_len: Targets per sequence.
        n_train: Training sequences.
        n_val: Validation sequences.
        n_test: Test sequences.
        batch_size: Sequences per training batch.
        data_seed: Fixes the sequences.
        shuffle_seed: Fixes the order of training batches.
    """

    def __init__(
        self,
        source: MarkovSource,
        seq_len: int,
        n_train: int,
        n_val: int,
        n_test: int,
        batch_size: int,
        data_seed: int,
        shuffle_seed: int,
    ) -> None:
        super().__init__()
        self.source = source
        self.seq_len = seq_len
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.batch_size = batch_size
        self.data_seed = data_seed
        self.shuffle_seed = shuffle_seed
        self.sequences: dict[str, np.ndarray] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.sequences:
            return
        # Child streams 1, 2, 3 of the data seed (0 made the source): independent per split,
        # all fixed by data_seed alone.
        for i, split in enumerate(SPLITS, start=1):
            rng = np.random.default_rng(np.random.SeedSequence(self.data_seed, spawn_key=(i,)))
            self.sequences[split] = self.source.sample(self.sizes[split], self.seq_len, rng)

    def _train_dataset(self) -> TensorDataset:
        return self._dataset("train")

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset("val"), batch_size=EVAL_BATCH_SIZE, num_workers=0)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset("test"), batch_size=EVAL_BATCH_SIZE, num_workers=0)

    def bayes_loss(self, split: str) -> float:
        """The loss of the true source itself on ``split``: the optimum on these very sequences.

        It differs from ``source.optimal_loss(seq_len)`` (an expectation) by sampling noise.
        """
        self.setup()
        return float(self.source.nll(self.sequences[split]).mean())

    def _dataset(self, split: str) -> TensorDataset:
        self.setup()
        seqs = torch.from_numpy(self.sequences[split])
        return TensorDataset(seqs[:, :-1], seqs[:, 1:])
