"""Several worker processes on one machine, sharing one storage, each pinned to its own GPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.study._loop import Terminated


class WorkerFailed(RuntimeError):
    """A worker process exited with an error."""


def launch_workers(storage: str, study_name: str, n_workers: int) -> None:
    """Starts `n_workers` processes running `optuna-bigmodel worker` and waits for all of them.

    On a machine with GPUs worker i sees only GPU i mod n_gpus (`CUDA_VISIBLE_DEVICES`); without
    GPUs the workers run on CPU. The study must already exist in `storage`.
    """
    n_gpus = _visible_gpus()
    processes = [
        subprocess.Popen(_worker_command(storage, study_name, i), env=_worker_env(i, n_gpus))
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


def _worker_env(index: int, n_gpus: int) -> dict[str, str]:
    env = dict(os.environ)
    if n_gpus > 0:
        env["CUDA_VISIBLE_DEVICES"] = _gpu_ids()[index % n_gpus]
    return env


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [g.strip() for g in visible.split(",") if g.strip()]
    return [str(i) for i in range(_visible_gpus())]


def _visible_gpus() -> int:
    import torch  # imported here: launching workers needs no torch in the parent otherwise

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
