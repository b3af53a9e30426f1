"""Token signing keys shared by every portal instance: a key file with key ids.

The file (`[portal] key_file`, default `<state_dir>/signing.keys`, mode 0600) holds
one key a line, `<kid> <secret>`; the LAST line is the current key that signs new
tokens, the lines above it are previous keys still accepted when verifying. Every
portal instance reads the same file (a shared config path, like the TOML), never
the database, so the edge boxes' database role cannot read it.

`ispedge portal rotate-key` appends a new current key: tokens signed with the
previous ones keep working, so nobody is logged out. A running portal re-reads the
file when it changed (checked at most every RELOAD_S, and at once on a token whose
kid it does not know), so instances pick a rotation up without a restart.

A `<state_dir>/jwt.key` from before key ids existed becomes the key "legacy";
tokens without a kid header are verified with it, so an upgrade logs nobody out.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from portal.config import Config, ConfigError

LEGACY_KID = "legacy"
RELOAD_S = 2.0
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def key_file(config: Config) -> Path:
    configured = config.get("portal", "key_file") or ""
    return Path(configured) if configured else config.state_dir / "signing.keys"


def _parse(path: Path, text: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kid, _, secret = line.partition(" ")
        secret = secret.strip()
        if not _KID.match(kid) or len(secret) < 32:
            raise ConfigError(f"{path}:{number}: expected '<kid> <secret of 32+ characters>'")
        keys.append((kid, secret.encode()))
    if not keys:
        raise ConfigError(f"{path} holds no key")
    return keys


def _new_line() -> str:
    return f"{time.strftime('%Y%m%d')}-{secrets.token_hex(4)} {secrets.token_hex(32)}\n"


def ensure_file(path: Path, legacy: Path | None = None) -> None:
    """Create the key file with mode 0600 unless it exists. O_EXCL makes two processes
    starting at once agree on one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    first = _new_line()
    if legacy is not None and legacy.is_file():
        old = legacy.read_bytes().strip()
        if len(old) >= 32:
            first = f"{LEGACY_KID} {old.decode()}\n"
    with os.fdopen(fd, "w") as fh:
        fh.write(first)


def rotate(path: Path, keep: int = 3) -> str:
    """Append a new current key, keep at most `keep` previous ones; returns its kid.
    Written to a temporary file and renamed, so a reader never sees half a file."""
    keys = _parse(path, path.read_text())
    line = _new_line()
    kept = [f"{kid} {secret.decode()}\n" for kid, secret in keys][-keep:] if keep > 0 else []
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(kept) + line)
    os.replace(tmp, path)
    return line.split(" ", 1)[0]


@dataclass
class KeyRing:
    """The keys of one key file: `current` signs, every key verifies (by kid)."""

    path: Path
    keys: dict[str, bytes]
    current_kid: str
    _mtime: float = 0.0
    _checked: float = 0.0

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        ring = cls(path, {}, "")
        ring._read()
        return ring

    @classmethod
    def from_config(cls, config: Config) -> KeyRing:
        path = key_file(config)
        ensure_file(path, legacy=config.state_dir / "jwt.key")
        return cls.load(path)

    def _read(self) -> None:
        stat = self.path.stat()
        pairs = _parse(self.path, self.path.read_text())
        self.keys = dict(pairs)
        self.current_kid = pairs[-1][0]
        self._mtime = stat.st_mtime
        self._checked = time.monotonic()

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed (a rotation by another process)."""
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_S:
            return
        self._checked = now
        try:
            if self.path.stat().st_mtime != self._mtime:
                self._read()
        except (OSError, ConfigError):
            pass  # keep the keys we have; a broken file must not log everyone out

    @property
    def current(self) -> bytes:
        self.refresh()
        return self.keys[self.current_kid]

    def holds(self, kid: str | None) -> bool:
        """Whether a token signed with key `kid` is still accepted (a key rotated out
        of the file is not, even for a token verified before). Every request asks:
        the file is looked at only once RELOAD_S has passed, checked here inline."""
        if time.monotonic() - self._checked >= RELOAD_S:
            self.refresh()
        return (kid or LEGACY_KID) in self.keys

    def verifying_key(self, kid: str | None) -> bytes | None:
        kid = kid or LEGACY_KID
        key = self.keys.get(kid)
        if key is None:
            self.refresh(force=time.monotonic() - self._checked >= 0.2)
            key = self.keys.get(kid)
        return key


def single(key: bytes, kid: str = LEGACY_KID) -> KeyRing:
    """A ring of one key with no file behind it (benchmarks, tools)."""
    return KeyRing(Path("/nonexistent"), {kid: key}, kid, 0.0, float("inf"))
