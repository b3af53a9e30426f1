"""Backups of the whole database, taken while it is written (issue 17).

- SQLite (embedded): SQLite's online backup API (`sqlite3.Connection.backup`)
  copies a consistent snapshot page by page while FreeRADIUS, the portal and the
  enforcer keep writing (WAL: the copy never blocks them); the copy is checked
  (`PRAGMA integrity_check`) before it is renamed into place.
- PostgreSQL: `pg_dump --format=custom` (one repeatable-read snapshot) and
  `pg_restore --clean --if-exists --single-transaction --no-owner`.

A backup is written to FILE.partial and renamed, so FILE is always whole.
`rotate` keeps the newest N backups of a directory (the systemd timer's run).
docs/OPERATIONS.md has the restore steps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from dns_filter import dburl

SQLITE_SUFFIX = ".sqlite"
PG_SUFFIX = ".pgdump"
PREFIX = "ispedge-"
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Done:
    path: Path
    bytes: int
    seconds: float


def suffix_for(url: str) -> str:
    return SQLITE_SUFFIX if dburl.dialect_of(url) == "sqlite" else PG_SUFFIX


def _sqlite_backup(source: str, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            # pages=0: one step, one consistent snapshot under a read transaction
            # (in WAL mode writers carry on meanwhile).
            src.backup(dst)
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise BackupError(f"the copy failed its integrity check: {ok}")
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()


async def _run(*argv: str, env: dict[str, str] | None = None) -> None:
    tool = shutil.which(argv[0])
    if tool is None:
        raise BackupError(f"{argv[0]} not found (Debian: apt install postgresql-client)")
    proc = await asyncio.create_subprocess_exec(
        tool, *argv[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env)
    _out, err = await proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{argv[0]} failed: {lines[-1] if lines else proc.returncode}")


def _pg_env(url: str) -> tuple[str, dict[str, str]]:
    # The DSN goes on the command line without its password (ps shows argv):
    # libpq reads PGPASSWORD from the environment instead.
    from urllib.parse import urlsplit, urlunsplit

    dsn = dburl.parse(url).dsn
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = parts.password
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + host + \
            (f":{parts.port}" if parts.port else "")
        dsn = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return dsn, env


def _partial(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    return partial


def _finish(partial: Path, target: Path, started: float) -> Done:
    try:
        os.chmod(partial, 0o640)  # ledgers and invoices: not world-readable
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return Done(target, target.stat().st_size, time.perf_counter() - started)


def _sqlite_backup_file(source: str, target: Path, started: float) -> Done:
    if not Path(source).is_file():
        raise BackupError(f"no database at {source}")
    partial = _partial(target)
    try:
        _sqlite_backup(source, partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return _finish(partial, target, started)


async def backup(url: str, target: Path) -> Done:
    """A consistent copy of the database at `url` in `target` (replaced whole)."""
    started = time.perf_counter()
    if dburl.dialect_of(url) == "sqlite":
        return await asyncio.to_thread(_sqlite_backup_file, dburl.sqlite_path(url), target,
                                       started)
    partial = await asyncio.to_thread(_partial, target)
    dsn, env = _pg_env(url)
    try:
        await _run("pg_dump", "--format=custom", "--no-owner", "--file", str(partial),
                   "--dbname", dsn, env=env)
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    return await asyncio.to_thread(_finish, partial, target, started)


def _head(source: Path) -> tuple[bytes, int]:
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    with source.open("rb") as f:
        return f.read(16), source.stat().st_size


def _check_sqlite_file(path: Path) -> None:
    with path.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupError(f"{path} is not an SQLite backup")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    if ok != "ok":
        raise BackupError(f"{path} failed its integrity check: {ok}")
    if "ispedge_migrations" not in names:
        raise BackupError(f"{path} is not an ispedge database")


def _sqlite_restore(source: Path, target: str) -> None:
    _check_sqlite_file(source)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        # Into the existing file, not a new one: FreeRADIUS keeps the old file open
        # if it is replaced. The backup API takes the write lock and rewrites every
        # page; other connections see the restored database at their next read.
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    finally:
        src.close()


async def restore(url: str, source: Path) -> Done:
    """Replace the database at `url` with the backup `source` (daemons stopped)."""
    started = time.perf_counter()
    head, size = await asyncio.to_thread(_head, source)
    if dburl.dialect_of(url) == "sqlite":
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is not an SQLite backup (the database is SQLite)")
        await asyncio.to_thread(_sqlite_restore, source, dburl.sqlite_path(url))
    else:
        if not head.startswith(PG_MAGIC):
            raise BackupError(f"{source} is not a pg_dump custom-format backup")
        dsn, env = _pg_env(url)
        await _run("pg_restore", "--clean", "--if-exists", "--single-transaction",
                   "--no-owner", "--exit-on-error", "--dbname", dsn, str(source), env=env)
    return Done(source, size, time.perf_counter() - started)


def stamped(directory: Path, url: str, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return directory / f"{PREFIX}{stamp}{suffix_for(url)}"


def rotate(directory: Path, keep: int, url: str) -> list[Path]:
    """Delete all but the newest `keep` backups of this kind in `directory`."""
    mine = sorted(p for p in directory.glob(f"{PREFIX}*{suffix_for(url)}") if p.is_file())
    gone = mine[:-keep] if keep > 0 else []
    for p in gone:
        p.unlink()
    return gone
