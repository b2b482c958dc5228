"""Seeds derived from the study seed, so that a study run twice repeats itself exactly."""

from __future__ import annotations

import numpy as np


def derived_seed(study_seed: int, index: int) -> int:
    """An independent 31-bit seed for item `index` (a trial number, a worker) of a study."""
    return int(np.random.SeedSequence([study_seed, index]).generate_state(1)[0] >> 1)
