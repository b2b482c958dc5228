"""Which GPUs each local worker sees: k per worker for trials on k devices, refused when there are
too few, nothing pinned on CPU. Pure functions, so no GPU is needed."""

from __future__ import annotations

import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.spec import TrainerSpec
from optuna_bigmodel.study import _workers
from optuna_bigmodel.study._workers import assign_gpus, gpus_per_trial, launch_workers

EIGHT = [str(i) for i in range(8)]


def test_k_gpus_per_worker_are_consecutive_and_disjoint() -> None:
    assert assign_gpus(3, 2, EIGHT) == ["0,1", "2,3", "4,5"]
    assert assign_gpus(2, 4, EIGHT) == ["0,1,2,3", "4,5,6,7"]


def test_the_ids_are_those_cuda_visible_devices_names() -> None:
    assert assign_gpus(2, 2, ["3", "5", "6", "7"]) == ["3,5", "6,7"]


def test_one_gpu_per_worker_may_be_shared_round_robin_as_before() -> None:
    assert assign_gpus(5, 1, ["0", "1"]) == ["0", "1", "0", "1", "0"]


def test_too_few_gpus_for_k_per_worker_is_refused_naming_the_values() -> None:
    expected = r"3 workers x trainer.devices = 2 need 6 GPUs, but 4 are visible \(0,1,2,3\)"
    with pytest.raises(BadInputError, match=expected + r".*at most 2 workers"):
        assign_gpus(3, 2, EIGHT[:4])


@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_without_gpus_nothing_is_pinned(k: int) -> None:
    assert assign_gpus(3, k, []) == [None, None, None]


def test_cpu_trials_pin_nothing_even_where_gpus_are() -> None:
    assert assign_gpus(3, 0, EIGHT) == [None, None, None]


@pytest.mark.parametrize(
    "accelerator, devices, expected",
    [("auto", 2, 2), ("cuda", 4, 4), ("gpu", "auto", 1), ("cpu", 2, 0), ("mps", 1, 0)],
)
def test_gpus_per_trial_follow_the_trainer_settings(
    accelerator: str, devices: int | str, expected: int
) -> None:
    assert gpus_per_trial(TrainerSpec(accelerator=accelerator, devices=devices)) == expected


def test_launch_workers_refuses_before_starting_any_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_workers, "_visible_gpus", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("no worker may start")

    monkeypatch.setattr(_workers.subprocess, "Popen", no_process)
    with pytest.raises(BadInputError, match="2 workers x trainer.devices = 2 need 4 GPUs"):
        launch_workers("sqlite:///unused.db", "study", 2, gpus_per_worker=2)


def test_each_worker_gets_its_gpus_in_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_workers, "_visible_gpus", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    started: list[str] = []

    class Finished:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started.append(env["CUDA_VISIBLE_DEVICES"])

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(_workers.subprocess, "Popen", Finished)
    launch_workers("sqlite:///unused.db", "study", 2, gpus_per_worker=2)
    assert started == ["4,5", "6,7"]
