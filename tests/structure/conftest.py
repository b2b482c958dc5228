"""Fixtures of the structure tests: a tiny gated GPT and MLP, fresh for each test."""

from __future__ import annotations

import pytest

from optuna_bigmodel.tasks._gpt import GPT
from optuna_bigmodel.tasks._mlp import MLP

from tests.structure._structure_helpers import make_gpt
from tests.structure._structure_helpers import make_mlp


@pytest.fixture
def gpt() -> GPT:
    return make_gpt()


@pytest.fixture
def mlp() -> MLP:
    return make_mlp()
