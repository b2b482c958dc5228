"""One worker's loop over trials: take a trial, keep it alive, run it, record how it ended.

This is Optuna's `Study.optimize` loop with two differences that tuning over many workers needs:
in exhaustive mode a worker only *claims* trials already queued (each grid point is queued once and
claimed atomically, so no point is evaluated twice), and an interrupted trial is re-queued so that
running the study again evaluates it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.study._compute import spent_compute_steps

_logger = logging.getLogger(__name__)

Objective = Callable[[optuna.Trial], float]
TrialCallback = Callable[[optuna.Study, FrozenTrial], None]

# States that use up the trial budget: finished evaluations and those in flight elsewhere.
_BUDGET_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
MAX_CONSECUTIVE_FAILURES = 3


class TrialFailure(Exception):
    """Raised by an objective to fail its trial with a short machine-readable reason (e.g. "oom")."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so the running trial is re-queued like on Ctrl-C."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread (a no-op in other threads).

    Inside `graceful_stop` as well, the first SIGTERM only asks the training run to stop.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received_sigterm.clear()
    previous = signal.signal(signal.SIGTERM, _on_stop_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _received_sigterm.clear()  # about this run only: a later one in this process starts afresh


# Lightning turns interruptions inside `fit` into SystemExit, so the exception's type cannot tell
# SIGTERM from Ctrl-C; the handler notes the signal here.
_received_sigterm = threading.Event()


@dataclass
class _StopRequest:
    """A training run that can stop cleanly is in progress (`armed`); a signal asked it to stop."""

    armed: bool = False
    signum: int | None = None


_stop = _StopRequest()


@contextmanager
def graceful_stop(enabled: bool = True) -> Iterator[None]:
    """While inside, the first SIGINT or SIGTERM only asks the run to stop; a second one raises.

    The training run polls `stop_requested` after each step and validation batch, and stops there
    with a checkpoint (`study._checkpoints.TrialCheckpoint`). A request that comes too late for the
    run to act on (it was finishing) stays pending: `run_trials` stops after telling the study how
    the trial ended.
    Only in the main thread, and only for runs that train in this process (`enabled`).
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    _stop.armed = True
    try:
        yield
    except BaseException:
        _stop.signum = None  # the run stopped (on the request or otherwise): nothing is pending
        raise
    finally:
        _stop.armed = False
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)


def stop_requested() -> int | None:
    """The signal that asked the running training to stop, if one did."""
    return _stop.signum if _stop.armed else None


def interruption_for(signum: int) -> KeyboardInterrupt:
    """The exception by which a stop on `signum` leaves the training run and the trial."""
    _stop.signum = None
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGTERM:
        _received_sigterm.set()
    if _stop.armed and _stop.signum is None:
        _stop.signum = signum
        _say("stopping after the current step, with a checkpoint; signal again to stop at once")
        return
    raise interruption_for(signum)


def _stop_if_requested() -> None:
    if _stop.signum is not None:
        raise interruption_for(_stop.signum)


def _say(message: str) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # stderr busy in the interrupted frame
        print(message, file=sys.stderr, flush=True)


class TrialsKeepFailing(RuntimeError):
    """Several trials in a row failed: the objective is broken, not unlucky."""


def run_trials(
    study: optuna.Study,
    objective: Objective,
    *,
    exhaustive: bool,
    n_trials: int | None,
    timeout: float | None,
    compute_steps: int | None = None,
    callbacks: Iterable[TrialCallback] = (),
) -> None:
    """Runs trials until the budget is spent or, in exhaustive mode, the queue is empty."""
    deadline = None if timeout is None else time.monotonic() + timeout
    failures = 0
    while not _budget_spent(study, n_trials, deadline, compute_steps):
        _fail_stale_trials(study)
        trial = claim_queued_trial(study) if exhaustive else _ask(study)
        if trial is None:
            return
        frozen = run_one_trial(study, trial, objective)
        for callback in callbacks:
            callback(study, frozen)
        _stop_if_requested()  # a stop asked for while the trial was finishing ends the worker now
        failures = failures + 1 if frozen.state == TrialState.FAIL else 0
        if failures >= MAX_CONSECUTIVE_FAILURES:
            reason = frozen.user_attrs.get("fail_reason", "unknown")
            raise TrialsKeepFailing(f"{failures} trials in a row failed; the last one: {reason}")


def claim_queued_trial(study: optuna.Study) -> optuna.Trial | None:
    """Takes a WAITING trial for this worker, or returns None when the queue is empty.

    The state change WAITING -> RUNNING is a single locked transaction in the storage (row lock on
    PostgreSQL, BEGIN IMMEDIATE on our SQLite), so two workers never claim the same trial.
    """
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING):
                return optuna.Trial(study, waiting._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def run_one_trial(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> FrozenTrial:
    """Runs the objective on `trial` with a heartbeat, and tells the study how it ended."""
    with _Heartbeat(study, trial._trial_id):
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            return study.tell(trial, state=TrialState.PRUNED)
        except (KeyboardInterrupt, SystemExit) as err:
            terminated = isinstance(err, Terminated) or _received_sigterm.is_set()
            _received_sigterm.clear()
            _fail(study, trial, "terminated" if terminated else "interrupted")
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            if isinstance(err, SystemExit):
                # Lightning ends an interrupted fit with SystemExit (code 0 after SIGTERM); leave as
                # the interruption it was, so the worker exits as on Ctrl-C.
                raise (Terminated() if terminated else KeyboardInterrupt()) from err
            raise
        except BadInputError as err:
            _fail(study, trial, f"bad input: {err}")
            raise
        except TrialFailure as err:
            if err.detail:
                trial.set_user_attr("fail_detail", err.detail)
            return _fail(study, trial, err.reason)
        except Exception as err:  # noqa: BLE001 - one broken trial must not end the study
            _logger.warning("Trial %d failed:\n%s", trial.number, traceback.format_exc())
            return _fail(study, trial, f"{type(err).__name__}: {err}")
    return study.tell(trial, value)


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> FrozenTrial:
    trial.set_user_attr("fail_reason", reason)
    return study.tell(trial, state=TrialState.FAIL)


def _budget_spent(
    study: optuna.Study, n_trials: int | None, deadline: float | None, compute_steps: int | None
) -> bool:
    if deadline is not None and time.monotonic() >= deadline:
        return True
    trials = study.get_trials(deepcopy=False)
    if compute_steps is not None and spent_compute_steps(trials) >= compute_steps:
        return True
    if n_trials is None:
        return False
    return sum(t.state in _BUDGET_STATES for t in trials) >= n_trials


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        # Optuna warns when heartbeats are used outside Study.optimize; this loop beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


def _fail_stale_trials(study: optuna.Study) -> None:
    if _heartbeat_interval(study._storage) is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def _heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    # Studies wrap an RDBStorage in a cache that forwards the heartbeat methods, so ask, don't
    # check the class.
    return getattr(storage, "get_heartbeat_interval", lambda: None)()


class _Heartbeat:
    """Records a heartbeat for a running trial every interval, from a daemon thread."""

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
        self._storage = study._storage
        self._trial_id = trial_id
        self._interval = _heartbeat_interval(study._storage)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self._interval is not None:
            self._storage.record_heartbeat(self._trial_id)
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            self._storage.record_heartbeat(self._trial_id)
