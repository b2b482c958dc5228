"""One trial in your own DDP script: asked once on global rank 0, its parameters on every rank.

With ``strategy="ddp"`` every rank runs your script, and a plain ``study.ask()`` would create one
trial per rank, each with its own parameters (optuna/optuna#4835). `ask_on_rank_zero` asks on
global rank 0 only and hands the same parameters to the other ranks, however they were started:

- Lightning's own ``ddp`` launcher re-runs the script for ranks 1..k-1 when rank 0 calls
  ``fit``. Rank 0, not yet distributed, asks and puts the trial's number and parameters in its
  environment, which Lightning copies into the processes it starts; they replay them.
- ``torchrun`` and SLURM start every rank at once. The default process group is set up early
  (Lightning finds it and uses it) and rank 0 broadcasts the number and parameters.

Other ranks get an `optuna.trial.FixedTrial` holding rank 0's values, so `suggest` runs on every
rank and returns the same thing everywhere. They never touch the storage.
"""

from __future__ import annotations

import atexit
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel.callbacks._ranks import destroy_process_group
from optuna_bigmodel.study._loop import TrialFailure

if TYPE_CHECKING:
    from lightning_fabric.plugins.environments import ClusterEnvironment

    from optuna_bigmodel.callbacks import OptunaPruning

P = TypeVar("P")
TRIAL_ENV = "OPTUNA_BIGMODEL_TRIAL"


def ask_on_rank_zero(
    ask: Callable[[], optuna.Trial], suggest: Callable[[optuna.trial.BaseTrial], P]
) -> tuple[optuna.trial.BaseTrial, P]:
    """Asks a trial on global rank 0 only and gives every rank the same sampled values.

    Args:
        ask: Called on global rank 0 only, e.g. ``lambda: optuna.load_study(...).ask()``: open
            the study inside it, so that other ranks never open the storage.
        suggest: Called on every rank with its trial; it suggests the parameters and returns
            whatever the script needs from them (a dict, a config, a model).

    Returns:
        The trial (the real one on rank 0, an `optuna.trial.FixedTrial` with rank 0's values
        elsewhere) and what `suggest` returned, equal on every rank.

    Example:
        .. code-block:: python

            def suggest(trial):
                return {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}

            trial, params = ask_on_rank_zero(lambda: optuna.load_study(**where).ask(), suggest)
            pruning = OptunaPruning(trial, monitor="val_loss")
            trainer = pl.Trainer(strategy="ddp", devices=2, callbacks=[pruning])
            trainer.fit(MyModule(**params), datamodule=data)
            tell_on_rank_zero(trial, pruning)  # COMPLETE with the value, or PRUNED

    Note:
        Lightning's ``ddp`` launcher starts its processes once per script run, so a script it
        launches runs one trial; run it again for the next (or use ``torchrun``, ``ddp_spawn``
        or ``optuna-bigmodel run``, which loop). Several nodes: start the ranks with
        ``torchrun`` or SLURM.
    """
    shared = _shared_by_parent()
    if shared is not None:
        return _replay(shared, suggest)
    cluster = _cluster_started_together()
    if cluster is not None:
        return _ask_and_broadcast(cluster, ask, suggest)
    if _published_here() and "LOCAL_RANK" in os.environ:
        raise RuntimeError(
            "Lightning's ddp launcher starts its processes once per script run, and it already "
            "ran one trial here; run the script once per trial, or start it with torchrun"
        )
    trial = ask()
    value = suggest(trial)
    os.environ[TRIAL_ENV] = json.dumps(_payload(trial))
    return trial, value


def tell_on_rank_zero(
    trial: optuna.trial.BaseTrial, pruning: OptunaPruning
) -> FrozenTrial | None:
    """Ends the trial on global rank 0 from what `pruning` saw; does nothing on other ranks.

    COMPLETE with the value reported last (the mean over ranks), PRUNED if the pruner stopped the
    run, FAIL with ``fail_reason`` ``nonfinite`` if a non-finite loss did and the callback's
    ``on_nonfinite`` is ``"fail"``.

    Returns:
        The finished trial on global rank 0, ``None`` on the others.
    """
    if not is_global_rank_zero():
        return None
    assert isinstance(trial, optuna.Trial), "global rank 0 holds the real trial"
    try:
        value = pruning.final_value()
    except optuna.TrialPruned:
        return trial.study.tell(trial, state=TrialState.PRUNED)
    except TrialFailure:
        return trial.study.tell(trial, state=TrialState.FAIL)  # the callback stored why
    return trial.study.tell(trial, value)


def is_global_rank_zero() -> bool:
    """Whether this process is global rank 0 (or not distributed at all).

    From the process group if there is one, else from the launcher's environment: ``RANK``
    (torchrun), ``SLURM_PROCID`` (SLURM), ``NODE_RANK`` and ``LOCAL_RANK`` (Lightning).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    for name in ("RANK", "SLURM_PROCID"):
        if name in os.environ:
            return int(os.environ[name]) == 0
    return os.environ.get("NODE_RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def _payload(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    return {"pid": os.getpid(), "number": trial.number, "params": trial.params}


def _replay(
    payload: dict[str, Any], suggest: Callable[[optuna.trial.BaseTrial], P]
) -> tuple[optuna.trial.BaseTrial, P]:
    trial = optuna.trial.FixedTrial(payload["params"], payload["number"])
    return trial, suggest(trial)


def _shared_by_parent() -> dict[str, Any] | None:
    """The trial rank 0 put in its environment, if Lightning started this process from it."""
    text = os.environ.get(TRIAL_ENV)
    if text is None or os.environ.get("LOCAL_RANK", "0") == "0":
        return None
    payload = json.loads(text)
    return payload if payload["pid"] == os.getppid() else None


def _published_here() -> bool:
    text = os.environ.get(TRIAL_ENV)
    return text is not None and json.loads(text)["pid"] == os.getpid()


def _cluster_started_together() -> ClusterEnvironment | None:
    """torchrun's or SLURM's description of the job when it started several ranks at once."""
    import torch.distributed as dist
    from lightning_fabric.plugins.environments import (
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    for kind in (TorchElasticEnvironment, SLURMEnvironment):
        if kind.detect():
            cluster = kind()
            if cluster.world_size() > 1:
                return cluster
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise RuntimeError(
            "a process group is already set up but neither torchrun nor SLURM started this "
            "process; call ask_on_rank_zero before anything else sets up torch.distributed"
        )
    return None


def _ask_and_broadcast(
    cluster: ClusterEnvironment,
    ask: Callable[[], optuna.Trial],
    suggest: Callable[[optuna.trial.BaseTrial], P],
) -> tuple[optuna.trial.BaseTrial, P]:
    import torch.distributed as dist

    if not dist.is_initialized():
        # What Lightning would do later; it then finds the group and uses it. No backend named:
        # torch sets up gloo for CPU tensors and NCCL for CUDA ones where CUDA is there.
        os.environ["MASTER_ADDR"] = cluster.main_address
        os.environ["MASTER_PORT"] = str(cluster.main_port)
        dist.init_process_group(rank=cluster.global_rank(), world_size=cluster.world_size())
        atexit.register(destroy_process_group)  # torch warns about a group left at exit
    message: list[Any] = [None]
    if cluster.global_rank() == 0:
        try:
            trial = ask()
            value = suggest(trial)
            message = [_payload(trial)]
        except Exception as err:
            message = [{"error": f"{type(err).__name__}: {err}"}]
            dist.broadcast_object_list(message, src=0)  # so the other ranks do not wait forever
            raise
        dist.broadcast_object_list(message, src=0)
        return trial, value
    dist.broadcast_object_list(message, src=0)
    if "error" in message[0]:
        raise RuntimeError(f"global rank 0 could not ask the trial: {message[0]['error']}")
    return _replay(message[0], suggest)

