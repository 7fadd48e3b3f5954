"""Container records: names, IDs and states in SQLite, safe across concurrent CLI calls.

The database (WAL) lives at ``$XDG_DATA_HOME/rootless/containers/containers.db``;
each container also has a directory ``containers/<id>/`` for its config.json, its
writable layer and its logs. A UNIQUE constraint on the name is what makes twenty
parallel ``run --name same`` end with exactly one container.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rootless._empty import EMPTY_MAP
from rootless._events import emit
from rootless._procfs import is_alive, process_start_time
from rootless._record import Record
from rootless.errors import ConfigError, RootlessError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL,          -- the name the user gave ('' for --rootfs)
    image_id TEXT NOT NULL,       -- config digest ('' for --rootfs)
    command TEXT NOT NULL,        -- JSON list
    created REAL NOT NULL,
    status TEXT NOT NULL,         -- created, running, paused, restarting, exited
    pid INTEGER NOT NULL DEFAULT 0,
    pid_start INTEGER NOT NULL DEFAULT 0,  -- /proc/PID/stat starttime: PID reuse guard
    exit_code INTEGER,
    started REAL,
    finished REAL,
    options TEXT NOT NULL DEFAULT '{}',  -- JSON: what the user asked (rm, ports, ...)
    monitor_pid INTEGER NOT NULL DEFAULT 0,
    monitor_start INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,  -- `stop` was asked: no restart
    health TEXT                               -- JSON health state, when checked
);
"""

_ADJECTIVES = (
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quirky", "serene", "tender", "vivid", "witty", "zealous", "bold", "cool",
)  # fmt: skip
_NOUNS = (
    "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "hypatia", "kepler",
    "lamport", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
)  # fmt: skip


class NoSuchContainer(RootlessError):
    pass


class NameInUse(ConfigError):
    pass


class ContainerRecord(Record):
    id: str
    name: str
    image: str
    image_id: str
    command: tuple[str, ...]
    created: float
    status: str
    pid: int = 0
    pid_start: int = 0
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    options: Mapping[str, Any] = EMPTY_MAP
    monitor_pid: int = 0
    monitor_start: int = 0
    restarts: int = 0
    stop_requested: bool = False
    health: Mapping[str, Any] | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def monitor_alive(self) -> bool:
        return is_alive(self.monitor_pid, self.monitor_start)


def generate_id() -> str:
    return os.urandom(32).hex()


def generate_name() -> str:
    # os.urandom, not secrets: importing secrets (hashlib, hmac) costs the start path ~4 ms.
    a, n = os.urandom(2)
    return f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[n % len(_NOUNS)]}"


def validate_name(name: str) -> str:
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
        raise ConfigError(
            f'invalid container name "{name}"',
            hint="names start with a letter or digit and use only [a-zA-Z0-9_.-]",
        )
    return name


class ContainerStore:
    def __init__(self, root: Path, events: Path | None = None) -> None:
        """``events``: the data root whose events log records what happens (None: none)."""
        self.root = root
        self.events = events
        root.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None

    def event(self, cid: str, status: str, **attributes: str) -> None:
        """Append a container event (``start``, ``died``, ...) to the events log."""
        if self.events is None:
            return
        row = (
            self._conn()
            .execute("SELECT name, image, options FROM containers WHERE id=?", (cid,))
            .fetchone()
        )
        name, image, options = row or ("", "", "{}")
        # the container's labels go with it, as in Podman (for events --filter label=)
        labels = json.loads(options or "{}").get("labels") or {}
        emit(self.events, "container", status, id=cid, name=name, image=image,
             attributes={**labels, **attributes})  # fmt: skip

    def container_dir(self, cid: str) -> Path:
        return self.root / cid

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.root / "containers.db", timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def create(
        self,
        *,
        name: str | None,
        image: str,
        image_id: str,
        command: tuple[str, ...],
        options: Mapping[str, Any] | None = None,
    ) -> ContainerRecord:
        """A new record in state ``created``; its directory is made too."""
        cid = generate_id()
        record = ContainerRecord(
            id=cid,
            name=validate_name(name) if name else "",
            image=image,
            image_id=image_id,
            command=command,
            created=time.time(),
            status="created",
            options=dict(options or {}),
        )
        for attempt in range(20):
            if not name:
                record = record._replace(name=generate_name() if attempt < 10 else cid[:16])
            try:
                with self._write() as db:
                    db.execute(
                        "INSERT INTO containers (id, name, image, image_id, command, created,"
                        " status, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (cid, record.name, image, image_id, json.dumps(command),
                         record.created, record.status, json.dumps(record.options)),
                    )  # fmt: skip
                break
            except sqlite3.IntegrityError:
                if name:
                    raise self._name_in_use(name) from None
        self.container_dir(cid).mkdir(mode=0o700)
        self.event(cid, "create")
        return record

    def _name_in_use(self, name: str) -> NameInUse:
        return NameInUse(
            f'the container name "{name}" is already in use by {self.get(name).id}',
            hint="remove that container (rootless rm) or choose another name",
        )

    def rename(self, cid: str, name: str) -> None:
        """A new unique name; the UNIQUE constraint settles races between two renames."""
        validate_name(name)
        try:
            with self._write() as db:
                db.execute("UPDATE containers SET name=? WHERE id=?", (name, cid))
        except sqlite3.IntegrityError:
            raise self._name_in_use(name) from None

    def _row(self, row: tuple[Any, ...]) -> ContainerRecord:
        (cid, name, image, image_id, command, created, status, pid, pid_start, exit_code,
         started, finished, options, monitor_pid, monitor_start, restarts, stop_requested,
         health) = row  # fmt: skip
        return ContainerRecord(cid, name, image, image_id, tuple(json.loads(command)), created,
                               status, pid, pid_start, exit_code, started, finished,
                               json.loads(options), monitor_pid, monitor_start, restarts,
                               bool(stop_requested),
                               json.loads(health) if health else None)  # fmt: skip

    def list(self) -> list[ContainerRecord]:
        rows = self._conn().execute("SELECT * FROM containers ORDER BY created DESC")
        return [self._row(r) for r in rows]

    def exists(self, cid: str) -> bool:
        return bool(self._conn().execute("SELECT 1 FROM containers WHERE id=?", (cid,)).fetchone())

    def get(self, ref: str) -> ContainerRecord:
        """By full name, full ID or unique ID prefix, like Podman."""
        db = self._conn()
        row = db.execute("SELECT * FROM containers WHERE name = ? OR id = ?", (ref, ref)).fetchone()
        if row is None and ref and all(c in "0123456789abcdef" for c in ref):
            rows = db.execute("SELECT * FROM containers WHERE id LIKE ?", (ref + "%",)).fetchall()
            if len(rows) > 1:
                raise ConfigError(
                    f'more than one container matches the ID prefix "{ref}"',
                    hint="give more characters of the ID, or the name",
                )
            row = rows[0] if rows else None
        if row is None:
            raise NoSuchContainer(
                f'no container with name or ID "{ref}" found',
                hint="see the containers with: rootless ps -a",
            )
        return self._row(row)

    def mark_running(self, cid: str, pid: int, *, monitor: int = 0) -> None:
        start = process_start_time(pid) or 0
        monitor_start = process_start_time(monitor) or 0 if monitor else 0
        with self._write() as db:
            db.execute(
                "UPDATE containers SET status='running', pid=?, pid_start=?, started=?,"
                " exit_code=NULL, finished=NULL, monitor_pid=?, monitor_start=?"
                " WHERE id=?",
                (pid, start, time.time(), monitor, monitor_start, cid),
            )
        self.event(cid, "start")

    def update(self, cid: str, **fields: Any) -> None:
        """Set columns (restarts, stop_requested, health, status) of one record."""
        allowed = {"restarts", "stop_requested", "health", "status", "options"}
        if not fields.keys() <= allowed:
            raise ValueError(f"cannot update {sorted(fields.keys() - allowed)}")
        values = [json.dumps(v) if k in ("health", "options") else v for k, v in fields.items()]
        sets = ", ".join(f"{k}=?" for k in fields)
        with self._write() as db:
            db.execute(f"UPDATE containers SET {sets} WHERE id=?", (*values, cid))

    def set_status_if(self, cid: str, old: str, new: str) -> bool:
        """Move ``cid`` from status ``old`` to ``new``; False if it was not in ``old``
        (the monitor may record an exit at any moment)."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE containers SET status=? WHERE id=? AND status=?", (new, cid, old)
            )
        return cur.rowcount == 1

    def mark_exited(self, cid: str, exit_code: int, *, monitor_done: bool = False) -> None:
        """Record the exit; with ``monitor_done`` the record also stops naming its
        supervisor, in the same write (a project supervisor outlives its containers,
        and ``rm`` waits while a container's supervisor lives)."""
        release = ", monitor_pid=0, monitor_start=0" if monitor_done else ""
        with self._write() as db:
            db.execute(
                "UPDATE containers SET status='exited', pid=0, pid_start=0, exit_code=?,"
                f" finished=?{release} WHERE id=?",
                (exit_code, time.time(), cid),
            )
        self.event(cid, "died", containerExitCode=str(exit_code))

    def refresh(self, record: ContainerRecord) -> ContainerRecord:
        """Correct a 'running' record whose supervisor died without recording the exit.

        The container dies with its supervisor, so a dead supervisor (or a dead PID 1)
        means the container is gone: it was killed (137) unless an exit was recorded.
        """
        if record.status not in ("running", "restarting", "paused"):
            return record
        # A live supervisor records the exit itself (maybe a moment after PID 1 died).
        if record.monitor_pid and record.monitor_alive:
            return record
        if record.monitor_pid or not is_alive(record.pid, record.pid_start):
            self.mark_exited(record.id, record.exit_code if record.exit_code is not None else 137)
            return self.get(record.id)
        return record

    def delete(self, cid: str) -> None:
        self.event(cid, "remove")
        with self._write() as db:
            db.execute("DELETE FROM containers WHERE id = ?", (cid,))
