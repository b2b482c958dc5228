"""A trial on k devices: the process that owns the trial starts one DDP rank process per device.

The owner (the worker that asked the trial from the study) samples the parameters once and writes
them, with the study spec and the trial's seed, to a launch file. Each rank process rebuilds the
task from that file and joins the DDP group exactly as a process started by Lightning's own ``ddp``
launcher would (``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``),
so Lightning launches nothing more. Rank 0 holds a `RelayTrial`: its ``report``,
``should_prune`` and ``set_user_attr`` travel over a socket to the owner, which alone talks to
the storage and runs the pruner. The other ranks hold an `optuna.trial.FixedTrial` they never ask.
At the end every rank sends how its run ended; the owner turns that into the trial's end.

The owner never joins the process group, so a rank that crashes or hangs cannot take the worker
with it: once one rank has failed, the others get `_GRACE_S` seconds before they are stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, cast

import optuna

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks._ranks import destroy_process_group
from optuna_bigmodel.study._training import TrialOutcome, quiet_lightning, train_trial

if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec

_LAUNCH_ENV = "OPTUNA_BIGMODEL_RANK_LAUNCH"
_CHANNEL_ENV = "OPTUNA_BIGMODEL_RANK_CHANNEL"
_ENTRY = "from optuna_bigmodel.study._ranks import run_rank; run_rank()"
# What rank 0 may ask of the trial the owner holds: what the pruning callback and recording use.
_RELAYED = ("report", "should_prune", "set_user_attr")
_POLL_S = 1.0
_GRACE_S = 30.0
_STOP_S = 10.0


@dataclass
class _Rank:
    index: int
    process: subprocess.Popen[bytes]
    channel: Connection
    outcome: dict[str, Any] | None = None


def train_on_ranks(
    spec: StudySpec,
    params: Mapping[str, Any],
    seed: int,
    trial: optuna.Trial,
    n_ranks: int,
    ckpt_path: str | None = None,
) -> TrialOutcome:
    """Trains `trial` on `n_ranks` DDP processes started here, serving the trial to rank 0;
    every rank resumes from `ckpt_path` when given."""
    launch = {
        "spec": spec.to_dict(),
        "params": dict(params),
        "seed": seed,
        "number": trial.number,
        "ckpt_path": ckpt_path,
    }
    with tempfile.TemporaryDirectory(prefix="optuna-bigmodel-ranks-") as folder:
        path = os.path.join(folder, "launch.json")
        with open(path, "w", encoding="utf-8") as file:
            json.dump(launch, file)
        ranks = _start_ranks(path, n_ranks)
        try:
            _serve(trial, ranks)
        finally:
            _stop(ranks)
    return _combine(ranks)


def _start_ranks(launch_path: str, n_ranks: int) -> list[_Rank]:
    port = _free_port()
    ranks = []
    for index in range(n_ranks):
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            NODE_RANK="0",
            LOCAL_RANK=str(index),
            WORLD_SIZE=str(n_ranks),
        )
        env[_LAUNCH_ENV] = launch_path
        env[_CHANNEL_ENV] = str(theirs.fileno())
        process = subprocess.Popen(
            [sys.executable, "-c", _ENTRY], env=env, pass_fds=(theirs.fileno(),)
        )
        theirs.close()
        ranks.append(_Rank(index, process, Connection(ours.detach())))
    return ranks


def _serve(trial: optuna.Trial, ranks: list[_Rank]) -> None:
    """Answers rank 0's calls and collects every rank's outcome until all rank processes end."""
    by_channel = {rank.channel: rank for rank in ranks}
    failed_since: float | None = None
    while by_channel:
        for channel in _ready(by_channel, _POLL_S):
            rank = by_channel[channel]
            try:
                kind, *body = channel.recv()
            except (EOFError, OSError):  # the process ended and its end of the socket closed
                del by_channel[channel]
                continue
            if kind == "call":
                channel.send(_answer(trial, *body))
            else:
                rank.outcome = body[0]
        exited = all(rank.process.poll() is not None for rank in ranks)
        if exited and not _ready(by_channel, 0):
            return  # everyone has exited; a channel still open belongs to a stray grandchild
        if failed_since is None and any(_has_failed(rank) for rank in ranks):
            failed_since = time.monotonic()
        if failed_since is not None and time.monotonic() - failed_since > _GRACE_S:
            return  # the other ranks are stuck waiting for the failed one; `_stop` ends them


def _ready(channels: dict[Connection, _Rank], timeout: float) -> list[Connection]:
    return cast("list[Connection]", wait(list(channels), timeout=timeout))


def _answer(trial: optuna.Trial, name: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    if name not in _RELAYED:
        return ("error", f"rank 0 may not call trial.{name}")
    try:
        return ("ok", getattr(trial, name)(*args))
    except Exception as err:  # noqa: BLE001 - the rank raises it in its own process
        return ("error", f"{type(err).__name__}: {err}")


def _has_failed(rank: _Rank) -> bool:
    """Whether this rank is out, so that the others may wait forever for it in a collective."""
    if rank.outcome is not None:
        return rank.outcome["state"] not in ("complete", "pruned")
    code = rank.process.poll()
    return code is not None and code != 0


def _stop(ranks: list[_Rank]) -> None:
    alive = [rank.process for rank in ranks if rank.process.poll() is None]
    for process in alive:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_S
    for process in alive:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for rank in ranks:
        rank.channel.close()


def _combine(ranks: list[_Rank]) -> TrialOutcome:
    """One outcome for the trial from what each rank said (rank 0's, unless something broke)."""
    for rank in ranks:  # an out-of-memory error on any device fails the trial as "oom"
        if rank.outcome is not None and rank.outcome.get("reason") == "oom":
            return TrialOutcome(**rank.outcome)
    problems = [_problem(rank) for rank in ranks]
    for rank in ranks:
        if rank.outcome is not None and rank.outcome["state"] == "bad_input":
            raise BadInputError(rank.outcome["detail"])
    if any(problems):
        raise RuntimeError("; ".join(problem for problem in problems if problem))
    return TrialOutcome(**ranks[0].outcome)  # type: ignore[arg-type]


def _problem(rank: _Rank) -> str:
    if rank.outcome is None:
        code = rank.process.returncode
        return f"rank {rank.index} exited with code {code} without saying how its run ended"
    if rank.outcome["state"] == "error":
        return f"rank {rank.index}: {rank.outcome['detail']}"
    return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RelayTrial:
    """Rank 0's stand-in for the trial that the owner process holds; calls go over a socket."""

    def __init__(self, channel: Connection, number: int, params: Mapping[str, Any]) -> None:
        self._channel = channel
        self.number = number
        self.params = dict(params)

    def report(self, value: float, step: int) -> None:
        self._call("report", value, step)

    def should_prune(self) -> bool:
        return bool(self._call("should_prune"))

    def set_user_attr(self, key: str, value: Any) -> None:
        self._call("set_user_attr", key, value)

    def _call(self, name: str, *args: Any) -> Any:
        self._channel.send(("call", name, args))
        status, payload = self._channel.recv()
        if status != "ok":
            raise RuntimeError(f"the process that owns trial {self.number}: {payload}")
        return payload


def run_rank() -> None:
    """The body of a rank process: train this rank's share and tell the owner how it ended."""
    channel = Connection(int(os.environ[_CHANNEL_ENV]))
    try:
        outcome = asdict(_train_rank(channel))
    except BadInputError as err:
        outcome = {"state": "bad_input", "detail": str(err)}
    except Exception as err:  # noqa: BLE001 - reported to the owner, which fails the trial
        traceback.print_exc()
        outcome = {"state": "error", "detail": f"{type(err).__name__}: {err}"}
    channel.send(("outcome", outcome))
    channel.close()
    destroy_process_group()  # a gloo group left for the interpreter's exit may abort it


def _train_rank(channel: Connection) -> TrialOutcome:
    from lightning_fabric.plugins.environments import LightningEnvironment

    from optuna_bigmodel.spec import parse_spec
    from optuna_bigmodel.tasks import resolve_task

    with open(os.environ[_LAUNCH_ENV], encoding="utf-8") as file:
        launch = json.load(file)
    rank = int(os.environ["LOCAL_RANK"])
    spec = parse_spec(launch["spec"], source=f"study {launch['spec']['name']!r}")
    params, number = launch["params"], launch["number"]
    trial: Any = RelayTrial(channel, number, params)
    if rank != 0:
        trial = optuna.trial.FixedTrial(params, number)
    quiet_lightning()
    return train_trial(
        spec,
        resolve_task(spec.task.name),
        params,
        launch["seed"],
        trial,
        rank_zero=rank == 0,
        ckpt_path=launch["ckpt_path"],
        strategy="ddp",
        devices=int(os.environ["WORLD_SIZE"]),
        # Inside a SLURM or torchrun job Lightning would read that job's ranks instead of ours.
        plugins=[LightningEnvironment()],
    )
