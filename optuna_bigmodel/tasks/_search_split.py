"""The held-out search split of a built-in datamodule, and full-batch training for ``gd``.

Learned knobs (gates, learned learning rates) step on batches of a *search split* carved from the
training data, never on training batches, and the weights never step on search batches. The
inner loop asks the datamodule for it with :meth:`SearchSplitMixin.configure_inner_loop` before
any dataloader is made (from a callback's ``setup``), then reads :meth:`search_dataloader`.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset
from torch.utils.data import Subset

from optuna_bigmodel._errors import BadInputError


class SearchSplitMixin:
    """Gives a LightningDataModule a search split and a full-batch mode.

    The class using it implements ``_train_dataset()`` (the whole training split) and sets
    ``batch_size``, ``data_seed`` and ``shuffle_seed``. The split is a fixed random share of the
    training samples, chosen by ``data_seed`` alone, so every trial of a study carves the same one.
    """

    batch_size: int
    data_seed: int
    shuffle_seed: int
    search_fraction: float = 0.0
    full_batch: bool = False

    def configure_inner_loop(self, search_fraction: float = 0.0, full_batch: bool = False) -> None:
        """Carve ``search_fraction`` of the training data out as the search split (0: none), and
        make each training batch the whole (remaining) training split when ``full_batch``."""
        if not 0.0 <= search_fraction < 1.0:
            raise BadInputError(f"search_fraction: got {search_fraction}; expected [0, 1)")
        self.search_fraction = float(search_fraction)
        self.full_batch = bool(full_batch)

    def train_dataloader(self) -> DataLoader:
        train, _ = self._split()
        batch_size = len(train) if self.full_batch else self.batch_size
        return DataLoader(
            train,
            batch_size=batch_size,
            shuffle=not self.full_batch,
            generator=torch.Generator().manual_seed(self.shuffle_seed),
            num_workers=0,
        )

    def search_dataloader(self) -> DataLoader:
        """Batches of the search split, shuffled by the trial's seed, as many as the training's."""
        _, search = self._split()
        if search is None:
            raise BadInputError(
                "search_dataloader: no search split; call configure_inner_loop(search_fraction>0)"
            )
        return DataLoader(
            search,
            batch_size=min(self.batch_size, len(search)),
            shuffle=True,
            generator=torch.Generator().manual_seed(self.shuffle_seed + 1),
            num_workers=0,
        )

    def _train_dataset(self) -> Dataset:
        raise NotImplementedError

    def _split(self) -> tuple[Dataset, Dataset | None]:
        whole = self._train_dataset()
        n_search = int(round(self.search_fraction * len(whole)))
        if n_search == 0:
            return whole, None
        if n_search >= len(whole):
            raise BadInputError(
                f"search_fraction {self.search_fraction} leaves no training data "
                f"({len(whole)} samples)"
            )
        order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(self.data_seed))
        search, train = order[:n_search].sort().values, order[n_search:].sort().values
        return Subset(whole, train.tolist()), Subset(whole, search.tolist())
