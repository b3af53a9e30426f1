"""A real FreeRADIUS 3.2 for tests, with radclient helpers.

`FreeRadius(database, secret=...)` writes a self-contained configuration into
a temporary directory (nothing read from /etc/freeradius at run time except
the shipped queries.conf, copied in), runs `freeradius -f -l stdout -d DIR`
on free loopback ports and stops it again:

    with FreeRadius("/tmp/x.db") as radius:          # or "postgres://..."
        reply = radius.authenticate("alice", "secret")
        radius.accounting("Start", NasSession("alice", "sess-1"))
        ... radius.coa_port: a CoA/Disconnect receiver that ACKs requests for
        ... open radacct sessions, NAKs others with Error-Cause 503, and logs
        ... every request: radius.coa_requests()

The database must already hold FreeRADIUS's own tables: create_sqlite_schema()
and create_postgres_database() load the shipped schema.sql.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.support.ports import free_udp_ports

FREERADIUS_ETC = Path("/etc/freeradius/3.0")
SHIPPED_SQL = FREERADIUS_ETC / "mods-config" / "sql" / "main"
TEMPLATE = Path(__file__).with_name("freeradius") / "radiusd.conf"
DICTIONARY_DIR = "/usr/share/freeradius"


def shipped_schema(dialect: str) -> Path:
    """FreeRADIUS's own schema.sql for 'sqlite' or 'postgresql'."""
    return SHIPPED_SQL / dialect / "schema.sql"


# --- databases ------------------------------------------------------------


@dataclass(frozen=True)
class PostgresParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> PostgresParams:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"not a postgres:// URL: {url}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
        )

    def url(self, dbname: str | None = None) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname or self.dbname}"


def create_sqlite_schema(path: str | Path) -> Path:
    """A new SQLite file with FreeRADIUS's shipped tables, in WAL mode (a
    reader must not make FreeRADIUS drop accounting)."""
    path = Path(path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(shipped_schema("sqlite").read_text())
    return path


def create_postgres_database(server_url: str) -> str:
    """A fresh database (unique name) on the server in server_url, holding the
    shipped postgresql schema.sql. Returns its URL; drop it with
    drop_postgres_database()."""
    import psycopg

    params = PostgresParams.from_url(server_url)
    name = f"ispedge_radius_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(params.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = params.url(name)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(shipped_schema("postgresql").read_text())
    return url


def drop_postgres_database(url: str) -> None:
    import psycopg

    params = PostgresParams.from_url(url)
    with psycopg.connect(params.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{params.dbname}" WITH (FORCE)')


# --- radclient ------------------------------------------------------------


@dataclass
class RadclientReply:
    """What radclient received: code name ('Access-Accept', 'CoA-NAK', ...)
    or None if nothing came back, and the reply attributes as text."""

    code: str | None
    attributes: dict[str, list[str]]
    returncode: int
    output: str

    def first(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None


_RECEIVED = re.compile(r"^Received (\S+) Id \d+ from")
_ATTRIBUTE = re.compile(r"^\s+(\S+) = (.*)$")


def parse_radclient(output: str, returncode: int = 0) -> RadclientReply:
    """Parse `radclient -x` output: the "Received ..." line and the
    attribute lines indented under it. (radclient exits 1 on a reject, so
    the exit status alone says little.)"""
    code: str | None = None
    attributes: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = _RECEIVED.match(line)
        if match:
            code, attributes = match.group(1), {}
            continue
        if code is None:
            continue
        match = _ATTRIBUTE.match(line)
        if match:
            name, value = match.groups()
            attributes.setdefault(name, []).append(_unquote(value))
        elif line.strip():
            break
    return RadclientReply(code, attributes, returncode, output)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def radclient(
    port: int,
    kind: str,
    secret: str,
    attributes: list[tuple[str, str | int]],
    *,
    host: str = "127.0.0.1",
    timeout_s: float = 3.0,
    retries: int = 1,
) -> RadclientReply:
    """Send one packet with radclient. kind: auth, acct, coa, disconnect, status."""
    body = "\n".join(f"{name} = {_quote(value)}" for name, value in attributes) + "\n"
    command = [
        shutil.which("radclient") or "/usr/bin/radclient",
        "-x",
        "-D",
        DICTIONARY_DIR,
        "-r",
        str(retries),
        "-t",
        str(timeout_s),
        f"{host}:{port}",
        kind,
        secret,
    ]
    process = subprocess.run(
        command, input=body, capture_output=True, text=True, timeout=timeout_s * (retries + 1) + 10
    )
    return parse_radclient(process.stdout + process.stderr, process.returncode)


def _quote(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class NasSession:
    """A session as a simulated NAS reports it. These five fields make
    acctuniqueid, so every Start/Interim/Stop must carry the same ones."""

    username: str
    acct_session_id: str
    nas_ip: str = "127.0.0.1"
    nas_identifier: str = "ispedge-test-nas"
    nas_port: int = 1
    framed_ip: str | None = None

    def identity(self) -> list[tuple[str, str | int]]:
        attributes: list[tuple[str, str | int]] = [
            ("User-Name", self.username),
            ("Acct-Session-Id", self.acct_session_id),
            ("NAS-IP-Address", self.nas_ip),
            ("NAS-Identifier", self.nas_identifier),
            ("NAS-Port", self.nas_port),
        ]
        if self.framed_ip:
            attributes.append(("Framed-IP-Address", self.framed_ip))
        return attributes


# --- the server -----------------------------------------------------------


@dataclass
class DetailRecord:
    """One request as the receiver's detail file logged it."""

    packet_type: str
    attributes: dict[str, list[str]] = field(default_factory=dict)


# detail adds these itself; they were not in the packet
_DETAIL_SYNTHETIC = {"Timestamp", "Packet-Original-Timestamp", "Packet-Type"}


class FreeRadius:
    """A running FreeRADIUS on loopback. database: SQLite file path, or a
    postgres:// URL. Start with start() or `with`."""

    def __init__(
        self,
        database: str | Path,
        *,
        secret: str = "testing123",
        workdir: str | Path | None = None,
        binary: str = "freeradius",
    ) -> None:
        if not secret or not re.fullmatch(r"[A-Za-z0-9!#$%&()*+,./:;<=>?@\[\]^_`{|}~-]+", secret):
            # it goes into radiusd.conf between quotes and onto radclient's command line
            raise ValueError("test secret must be printable ASCII without quotes or spaces")
        self.database = str(database)
        self.secret = secret
        self.binary = shutil.which(binary) or f"/usr/sbin/{binary}"
        self._own_dir = workdir is None
        self.directory = Path(workdir or tempfile.mkdtemp(prefix="ispedge-radius-"))
        self.auth_port, self.acct_port, self.coa_port = free_udp_ports(3)
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def dialect(self) -> str:
        return (
            "postgresql" if self.database.startswith(("postgres://", "postgresql://")) else "sqlite"
        )

    @property
    def detail_path(self) -> Path:
        return self.directory / "coa-detail"

    def write_config(self) -> Path:
        for sub in ("log", "run", "radacct", f"mods-config/sql/main/{self.dialect}"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(
            SHIPPED_SQL / self.dialect / "queries.conf",
            self.directory / "mods-config/sql/main" / self.dialect / "queries.conf",
        )
        if self.dialect == "sqlite":
            driver = (
                "\t\tsqlite {\n"
                f'\t\t\tfilename = "{Path(self.database).resolve()}"\n'
                "\t\t\tbusy_timeout = 5000\n"
                "\t\t}"
            )
            radius_db = "radius"
        else:
            pg = PostgresParams.from_url(self.database)
            driver = (
                f'\t\tserver = "{pg.host}"\n\t\tport = {pg.port}\n'
                f'\t\tlogin = "{pg.user}"\n\t\tpassword = "{pg.password}"\n'
                "\t\tpostgresql {\n\t\t\tsend_application_name = yes\n\t\t}"
            )
            radius_db = pg.dbname
        text = TEMPLATE.read_text()
        for key, value in {
            "@DIR@": str(self.directory),
            "@SECRET@": self.secret,
            "@DIALECT@": self.dialect,
            "@DRIVER_CONFIG@": driver,
            "@RADIUS_DB@": radius_db,
            "@AUTH_PORT@": str(self.auth_port),
            "@ACCT_PORT@": str(self.acct_port),
            "@COA_PORT@": str(self.coa_port),
        }.items():
            text = text.replace(key, value)
        config = self.directory / "radiusd.conf"
        config.write_text(text)
        return config

    def start(self, timeout_s: float = 20.0) -> FreeRadius:
        self.write_config()
        self.process = subprocess.Popen(
            [self.binary, "-f", "-l", "stdout", "-d", str(self.directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("FreeRADIUS did not start:\n" + "\n".join(self.log[-40:]))
        return self

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line.rstrip("\n"))
            if "Ready to process requests" in line:
                self._ready.set()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> FreeRadius:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- talking to it ----------------------------------------------------

    def authenticate(
        self, username: str, password: str, extra: list[tuple[str, str | int]] | None = None
    ) -> RadclientReply:
        attributes: list[tuple[str, str | int]] = [
            ("User-Name", username),
            ("User-Password", password),
            ("NAS-IP-Address", "127.0.0.1"),
            ("NAS-Port", 1),
        ]
        return radclient(self.auth_port, "auth", self.secret, attributes + (extra or []))

    def accounting(
        self,
        status: str,
        session: NasSession,
        *,
        input_octets: int = 0,
        output_octets: int = 0,
        session_time_s: int = 0,
    ) -> RadclientReply:
        """Start / Interim-Update / Stop. Octet totals may exceed 32 bits:
        they are split into Octets + Gigawords as a NAS does."""
        attributes = session.identity() + [
            ("Acct-Status-Type", status),
            ("Acct-Session-Time", session_time_s),
            ("Acct-Input-Octets", input_octets & 0xFFFFFFFF),
            ("Acct-Input-Gigawords", input_octets >> 32),
            ("Acct-Output-Octets", output_octets & 0xFFFFFFFF),
            ("Acct-Output-Gigawords", output_octets >> 32),
        ]
        return radclient(self.acct_port, "acct", self.secret, attributes)

    def coa_requests(self) -> list[DetailRecord]:
        """Every CoA/Disconnect request the receiver logged, oldest first."""
        if not self.detail_path.exists():
            return []
        records: list[DetailRecord] = []
        for line in self.detail_path.read_text().splitlines():
            if not line.strip():
                continue
            if not line.startswith((" ", "\t")):
                records.append(DetailRecord(line.strip()))
                continue
            match = _ATTRIBUTE.match(line)
            if match and records and match.group(1) not in _DETAIL_SYNTHETIC:
                records[-1].attributes.setdefault(match.group(1), []).append(
                    _unquote(match.group(2))
                )
        return records
