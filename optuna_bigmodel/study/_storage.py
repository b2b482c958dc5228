"""Where studies live: an SQLite file by default, any SQLAlchemy URL or a journal file otherwise."""

from __future__ import annotations

import os
import sqlite3
import warnings
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy import event
from sqlalchemy import exc as sqlalchemy_exc

from optuna_bigmodel._errors import BadInputError

# Seconds between heartbeats of a running trial, and how long a silent trial is given before it is
# marked failed and re-queued. A trial of a large model easily outlives a minute, the heartbeat
# thread keeps it alive; only a dead worker stops beating. The environment variables let a
# cluster (or a test) shorten or lengthen them for every worker at once.
HEARTBEAT_ENV = "OPTUNA_BIGMODEL_HEARTBEAT_S"
GRACE_ENV = "OPTUNA_BIGMODEL_GRACE_S"
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 60
MAX_RETRY = 3
# How long an SQLite writer waits for the lock before giving up ("database is locked").
SQLITE_LOCK_TIMEOUT_S = 120.0
JOURNAL_PREFIX = "journal:///"


def default_storage_url(run_dir: str, study_name: str, *, create: bool = True) -> str:
    """The SQLite file inside the study's run folder; the folder is made if `create`."""
    folder = os.path.abspath(os.path.join(run_dir, study_name))
    if create:
        os.makedirs(folder, exist_ok=True)
    return f"sqlite:///{os.path.join(folder, 'study.db')}"


def open_storage(
    url: str, *, heartbeat: bool = True, must_exist: bool = False
) -> optuna.storages.BaseStorage:
    """Opens a storage URL and checks it is reachable, raising `BadInputError` if not.

    `sqlite:///PATH` and other SQLAlchemy URLs (PostgreSQL for workers on several machines) give an
    `RDBStorage` with heartbeats; `journal:///PATH` gives Optuna's journal file backend. With
    `must_exist`, a file-backed storage that is not there yet is refused instead of created (for
    commands that only read).
    """
    if not isinstance(url, str) or not url:
        raise BadInputError(f"storage: expected a non-empty URL string, got {url!r}")
    if must_exist:
        _check_file_exists(url)
    if url.startswith(JOURNAL_PREFIX):
        return _open_journal(url[len(JOURNAL_PREFIX) :])
    try:
        sqlalchemy.engine.make_url(url)
    except sqlalchemy_exc.ArgumentError as err:
        raise _bad_url(url, f"not a valid SQLAlchemy URL ({err})") from None
    return _open_rdb(url, heartbeat=heartbeat)


def _open_rdb(url: str, *, heartbeat: bool) -> optuna.storages.RDBStorage:
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        _check_sqlite_folder(url)
    _check_not_foreign(url, _existing_tables(url))
    storage_cls = _SerialisedSQLiteStorage if is_sqlite else optuna.storages.RDBStorage
    engine_kwargs = _sqlite_engine_kwargs() if is_sqlite else {"pool_pre_ping": True}
    try:
        # Heartbeats are "experimental" in Optuna since 2.8; the warning says nothing to users.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = _heartbeat_kwargs() if heartbeat else {}
            return storage_cls(url, engine_kwargs=engine_kwargs, **beat)
    except ImportError:
        raise _missing_driver(url) from None
    except (sqlalchemy_exc.SQLAlchemyError, RuntimeError) as err:
        raise _bad_url(url, _first_line(err)) from None


def _heartbeat_kwargs() -> dict[str, Any]:
    return dict(
        heartbeat_interval=_seconds_from_env(HEARTBEAT_ENV, HEARTBEAT_INTERVAL),
        grace_period=_seconds_from_env(GRACE_ENV, GRACE_PERIOD),
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=MAX_RETRY
        ),
    )


def _seconds_from_env(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise BadInputError(f"{name}: expected a whole number of seconds >= 1, got {text!r}")
    return int(text)


def _open_journal(path: str) -> optuna.storages.JournalStorage:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _bad_url(JOURNAL_PREFIX + path, f"folder {folder!r} does not exist")
    backend = optuna.storages.journal.JournalFileBackend(path)
    return optuna.storages.JournalStorage(backend)


def _check_file_exists(url: str) -> None:
    path = url[len(JOURNAL_PREFIX) :] if url.startswith(JOURNAL_PREFIX) else None
    if url.startswith("sqlite:///"):
        path = sqlalchemy.engine.make_url(url).database
    if path and not os.path.isfile(path):
        raise _bad_url(url, f"file {path!r} does not exist")


# Tables every Optuna RDB storage has; a database with tables but none of these belongs to
# another application and is never written to.
_OPTUNA_TABLES = {"studies", "trials", "version_info"}


def _existing_tables(url: str) -> set[str]:
    """The tables already in the database, read without creating or changing anything."""
    if url.startswith("sqlite"):
        return _sqlite_tables(url)
    try:
        engine = sqlalchemy.create_engine(url)
    except ImportError:
        raise _missing_driver(url) from None
    except sqlalchemy_exc.SQLAlchemyError as err:
        raise _bad_url(url, _first_line(err)) from None
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    except sqlalchemy_exc.SQLAlchemyError as err:
        raise _bad_url(url, _first_line(err)) from None
    finally:
        engine.dispose()


def _sqlite_tables(url: str) -> set[str]:
    path = sqlalchemy.engine.make_url(url).database
    if not path or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return set()
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return {row[0] for row in rows}
    except sqlite3.DatabaseError as err:
        reason = f"the file is not a readable SQLite database ({err}); it was left untouched"
        raise _bad_url(url, reason, hint=False) from None


def _check_not_foreign(url: str, tables: set[str]) -> None:
    if tables and not tables & _OPTUNA_TABLES:
        shown = ", ".join(sorted(tables)[:5])
        reason = f"the database holds another application's tables ({shown}); it was left untouched"
        raise _bad_url(url, reason, hint=False)


def _check_sqlite_folder(url: str) -> None:
    database = sqlalchemy.engine.make_url(url).database
    if not database or database == ":memory:":
        raise _bad_url(url, "an in-memory SQLite database cannot be shared; give a file path")
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        raise _bad_url(url, f"folder {folder!r} does not exist")


def _sqlite_engine_kwargs() -> dict[str, Any]:
    # isolation_level=None hands transaction control to the "begin" hook below.
    return {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S, "isolation_level": None}}


class _SerialisedSQLiteStorage(optuna.storages.RDBStorage):
    """RDBStorage on SQLite whose transactions take the write lock up front (BEGIN IMMEDIATE).

    With SQLite's default deferred transactions, two workers that both read a row and then both try
    to write it deadlock, and one of them fails at once with "database is locked" instead of
    waiting. Taking the lock at BEGIN makes every transaction wait its turn (up to the busy
    timeout), which also makes claiming a queued trial atomic: each grid point is taken once.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        _serialise_transactions(self.engine)

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        _serialise_transactions(self.engine)


def _serialise_transactions(engine: sqlalchemy.engine.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _bad_url(url: str, reason: str, hint: bool = True) -> BadInputError:
    expected = (
        ". Expected an SQLAlchemy URL such as 'sqlite:///path/study.db' or "
        "'postgresql://user:pass@host/db', or 'journal:///path/study.log'"
    )
    return BadInputError(f"storage: cannot open {url!r}: {reason}{expected if hint else ''}")


def _missing_driver(url: str) -> BadInputError:
    driver = "pip install 'optuna-bigmodel[postgresql]'" if "postgres" in url else "its driver"
    return _bad_url(url, f"the database driver is not installed; install {driver}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
