"""Weight initialisation fixed by a seed alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch


T = TypeVar("T")


def seeded_init(seed: int, make: Callable[[], T]) -> T:
    """Calls ``make`` with torch's global generator seeded by ``seed``, then restores it.

    Layers draw their initial weights from the global generator; seeding a private copy of it
    makes the weights a function of ``seed`` without changing what the caller's code draws next.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()
