"""Probes: quick measurements that answer everyday questions before a study is launched.

- Which learning rate: :func:`lr_range_test`, Leslie Smith's LR range test, whose suggestion is a
  start for a learned rate or the centre of a sampled range.
- Which batch size: :func:`largest_batch_size`, the largest training batch that fits in GPU
  memory (or under a given memory limit), found by doubling and bisection.

Both run on the module and data a task builds, and leave the module exactly as they found it.
:func:`build_at_middle` builds a study's model for them as the command line does: each sampled
knob at the middle of its range or its first choice (:func:`middle_params`).
"""

from optuna_bigmodel.probes._batch_size import batch_memory
from optuna_bigmodel.probes._batch_size import BatchSizeResult
from optuna_bigmodel.probes._batch_size import BatchTry
from optuna_bigmodel.probes._batch_size import largest_batch_size
from optuna_bigmodel.probes._batch_size import search_largest
from optuna_bigmodel.probes._lr_figure import lr_range_figure
from optuna_bigmodel.probes._lr_range import lr_range_test
from optuna_bigmodel.probes._lr_range import LRRangeResult
from optuna_bigmodel.probes._middle import build_at_middle
from optuna_bigmodel.probes._middle import middle_params


__all__ = [
    "BatchSizeResult",
    "BatchTry",
    "LRRangeResult",
    "batch_memory",
    "build_at_middle",
    "largest_batch_size",
    "lr_range_figure",
    "lr_range_test",
    "middle_params",
    "search_largest",
]
