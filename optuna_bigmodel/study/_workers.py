"""Several worker processes on one machine, sharing one storage, each pinned to its own GPUs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.study._loop import Terminated

if TYPE_CHECKING:
    from optuna_bigmodel.spec import TrainerSpec


class WorkerFailed(RuntimeError):
    """A worker process exited with an error."""


def launch_workers(
    storage: str, study_name: str, n_workers: int, *, gpus_per_worker: int = 1
) -> None:
    """Starts `n_workers` processes running `optuna-bigmodel worker` and waits for all of them.

    On a machine with GPUs each worker sees only its own (`CUDA_VISIBLE_DEVICES`): with
    `gpus_per_worker` k > 1, worker i gets GPUs i*k .. i*k+k-1, for trials on k devices; with
    k = 1 worker i gets GPU i mod n_gpus, so several workers of small trials may share one.
    Without GPUs, or with k = 0 (CPU trials), nothing is pinned and the workers run on CPU. The
    study must already exist in `storage`.

    Raises:
        BadInputError: k > 1 and `n_workers` * k exceeds the visible GPUs.
    """
    gpus = assign_gpus(n_workers, gpus_per_worker, _gpu_ids())
    processes = [
        subprocess.Popen(_worker_command(storage, study_name, i), env=_worker_env(gpus[i]))
        for i in range(n_workers)
    ]
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt as err:
        # Ctrl-C reaches the whole process group; a SIGTERM sent to us alone is passed on.
        for process in processes:
            if isinstance(err, Terminated) and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()  # each worker re-queues its running trial before it exits
        raise
    failed = [(i, code) for i, code in enumerate(codes) if code != 0]
    if any(code == BadInputError.exit_code for _, code in failed):
        raise BadInputError(f"workers: worker(s) {failed} refused their input; see above")
    if failed:
        raise WorkerFailed(f"worker(s) exited with errors (index, exit code): {failed}")


def _worker_command(storage: str, study_name: str, index: int) -> list[str]:
    return [
        sys.executable, "-m", "optuna_bigmodel", "worker",
        "--storage", storage, "--study", study_name, "--worker-index", str(index),
    ]  # fmt: skip


def gpus_per_trial(trainer: TrainerSpec) -> int:
    """How many GPUs one trial of these trainer settings uses: 0 on CPU (or MPS), else
    ``devices`` (1 for ``"auto"``, which then takes the one GPU its worker sees)."""
    if trainer.accelerator in ("cpu", "mps"):
        return 0
    return trainer.devices if isinstance(trainer.devices, int) else 1


def assign_gpus(n_workers: int, gpus_per_worker: int, gpu_ids: list[str]) -> list[str | None]:
    """Each worker's ``CUDA_VISIBLE_DEVICES``, or None where nothing is pinned (no GPUs, or CPU
    trials). Worker i gets ``gpu_ids[i*k : i*k+k]``; with k = 1, ``gpu_ids[i mod n]``.

    Raises:
        BadInputError: k > 1 and ``n_workers * k`` exceeds ``len(gpu_ids)``: two trials would
            share GPUs, each running DDP over all of them.
    """
    k = gpus_per_worker
    if not gpu_ids or k == 0:
        return [None] * n_workers
    if k == 1:
        return [gpu_ids[i % len(gpu_ids)] for i in range(n_workers)]
    if n_workers * k > len(gpu_ids):
        raise BadInputError(
            f"workers: {n_workers} workers x trainer.devices = {k} need {n_workers * k} GPUs, "
            f"but {len(gpu_ids)} are visible ({','.join(gpu_ids)}); use at most "
            f"{len(gpu_ids) // k} workers, or fewer devices per trial"
        )
    return [",".join(gpu_ids[i * k : (i + 1) * k]) for i in range(n_workers)]


def _worker_env(gpus: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    return env


def _gpu_ids() -> list[str]:
    """The GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` names them; none without CUDA."""
    n_gpus = _visible_gpus()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [g.strip() for g in visible.split(",") if g.strip()][:n_gpus]
    return [str(i) for i in range(n_gpus)]


def _visible_gpus() -> int:
    import torch  # imported here: launching workers needs no torch in the parent otherwise

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
