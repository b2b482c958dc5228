"""The 8x8 hand-written digits scikit-learn ships (1797 images, 10 classes), split and batched.

scikit-learn is an optional extra: it is imported only when the data is needed.
"""

from __future__ import annotations

import functools

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks._search_split import SearchSplitMixin


N_VAL = 300
N_TEST = 300
N_PIXELS = 64
N_CLASSES = 10

# The whole validation split in one batch: validation runs often and should cost little.
EVAL_BATCH_SIZE = 512


def require_sklearn() -> None:
    """Raises BadInputError, saying how to install it, if scikit-learn is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise BadInputError(
            "task 'digits_mlp' needs scikit-learn, which is not installed; "
            "run: pip install optuna-bigmodel[digits]"
        ) from None


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images ``(1797, 64)`` scaled to [0, 1] (the pixels count 0..16) and labels ``(1797,)``.

    The arrays are shared between calls and read-only.

    Raises:
        BadInputError: scikit-learn is not installed.
    """
    require_sklearn()
    return _load_digits_arrays()


@functools.lru_cache(maxsize=1)
def _load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Parsing the shipped CSV costs more than the rest of a build; every trial reads the same.
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def split_digits(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices of the ``train``, ``val`` and ``test`` splits (1197 / 300 / 300 of 1797).

    The val and test splits keep the class proportions of the whole set, and the split depends
    only on ``seed``.
    """
    from sklearn.model_selection import train_test_split

    everything = np.arange(labels.size)
    rest, test = train_test_split(
        everything, test_size=N_TEST, stratify=labels, random_state=seed
    )
    train, val = train_test_split(
        rest, test_size=N_VAL, stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


class DigitsDataModule(SearchSplitMixin, pl.LightningDataModule):
    """The digits as ``(x, y)`` batches: ``x`` of shape ``(B, 64)`` in [0, 1], ``y`` of ``(B,)``.

    Args:
        batch_size: Images per training batch.
        data_seed: Fixes the split.
        shuffle_seed: Fixes the order of training batches (the trial's seed).
    """

    def __init__(self, batch_size: int, data_seed: int, shuffle_seed: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.data_seed = data_seed
        self.shuffle_seed = shuffle_seed
        self.indices: dict[str, np.ndarray] = {}
        self._datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._datasets:
            return
        images, labels = load_digits_arrays()
        self.indices = split_digits(labels, self.data_seed)
        for split, index in self.indices.items():
            x, y = torch.from_numpy(images[index]), torch.from_numpy(labels[index])
            self._datasets[split] = TensorDataset(x, y)

    def _train_dataset(self) -> TensorDataset:
        self.setup()
        return self._datasets["train"]

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self._datasets["val"], batch_size=EVAL_BATCH_SIZE, num_workers=0)

    def test_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self._datasets["test"], batch_size=EVAL_BATCH_SIZE, num_workers=0)
