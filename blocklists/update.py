"""Fetch, validate and publish a new blocklist generation.

Each source is fetched with a conditional GET (ETag / If-Modified-Since) and
its last good copy is kept in `<blocklist_dir>/sources/`. A source that fails
to download, fails to parse, or shrinks by more than `max_shrink_fraction`
is rejected and its previous copy is used instead, so one bad upstream list
never empties a category. The store is built into a fresh generation
directory and published by atomically replacing the `current` symlink;
running resolvers notice the new target and swap it in between two queries.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from blocklists.parse import ParseResult, parse_text
from blocklists.settings import BlocklistSettings
from blocklists.store import MANIFEST_FILE, build_store

log = logging.getLogger("ispedge.blocklists")

DATA_DIR = Path(__file__).parent / "data"
CURRENT = "current"
GENERATIONS = "generations"
SOURCES = "sources"


@dataclass
class SourceResult:
    category: str  # "allowlist" for allowlist sources
    source: str
    status: str  # fetched | not-modified | file | builtin | rejected | failed
    domains: int = 0
    error: str = ""


@dataclass
class UpdateReport:
    ok: bool
    changed: bool
    generation: str | None
    counts: dict[str, int] = field(default_factory=dict)
    sources: list[SourceResult] = field(default_factory=list)
    error: str = ""


def builtin_categories() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.txt") if p.stem != "README")


def current_generation(blocklist_dir: Path) -> Path | None:
    link = blocklist_dir / CURRENT
    try:
        target = os.readlink(link)
    except OSError:
        return None
    path = (blocklist_dir / target).resolve()
    return path if (path / MANIFEST_FILE).exists() else None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _SourceCache:
    """Last good copy of one source plus its validators (ETag, Last-Modified, size)."""

    def __init__(self, root: Path, source: str):
        digest = hashlib.sha256(source.encode()).hexdigest()[:24]
        self.body_path = root / f"{digest}.txt"
        self.meta_path = root / f"{digest}.json"
        try:
            self.meta: dict[str, object] = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            self.meta = {}

    def previous(self) -> ParseResult | None:
        try:
            return parse_text(self.body_path.read_text("utf-8", "replace").splitlines())
        except OSError:
            return None

    def save(self, body: bytes, domains: int, etag: str | None, last_modified: str | None) -> None:
        _atomic_write(self.body_path, body)
        self.meta = {
            "etag": etag,
            "last_modified": last_modified,
            "domains": domains,
            "saved_at": time.time(),
        }
        _atomic_write(self.meta_path, json.dumps(self.meta).encode())


def _validate(result: ParseResult, previous_count: int, settings: BlocklistSettings) -> str:
    """Empty string when acceptable, else why the new copy is rejected."""
    content_lines = len(result.domains) + result.rejected
    if content_lines == 0 and previous_count > 0:
        return "list is empty"
    if content_lines and result.rejected / content_lines > settings.max_reject_fraction:
        return f"{result.rejected} of {content_lines} lines unreadable"
    if previous_count and len(result.domains) < previous_count * (1 - settings.max_shrink_fraction):
        return f"shrank from {previous_count} to {len(result.domains)} domains"
    return ""


def _fetch_source(
    source: str, category: str, cache: _SourceCache, settings: BlocklistSettings
) -> tuple[SourceResult, set[str]]:
    previous_count = int(cache.meta.get("domains", 0) or 0)  # type: ignore[call-overload]

    def fallback(status: str, error: str) -> tuple[SourceResult, set[str]]:
        prev = cache.previous()
        domains = prev.domains if prev else set()
        log.warning(
            "blocklist source %s (%s) %s: %s; keeping previous copy (%d domains)",
            source,
            category,
            status,
            error,
            len(domains),
        )
        return SourceResult(category, source, status, len(domains), error), domains

    etag = last_modified = None
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"User-Agent": "ispedge-blocklists/1"})
        if cache.body_path.exists():
            if cache.meta.get("etag"):
                request.add_header("If-None-Match", str(cache.meta["etag"]))
            if cache.meta.get("last_modified"):
                request.add_header("If-Modified-Since", str(cache.meta["last_modified"]))
        try:
            with urllib.request.urlopen(request, timeout=settings.http_timeout_s) as response:
                body = response.read(settings.max_source_bytes + 1)
                etag = response.headers.get("ETag")
                last_modified = response.headers.get("Last-Modified") or email.utils.formatdate(
                    usegmt=True
                )
        except urllib.error.HTTPError as e:
            if e.code == 304:
                prev = cache.previous()
                if prev is not None:
                    return SourceResult(
                        category, source, "not-modified", len(prev.domains)
                    ), prev.domains
                return fallback("failed", "304 without a cached copy")
            return fallback("failed", f"HTTP {e.code}")
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            return fallback("failed", str(getattr(e, "reason", e)))
        status = "fetched"
    else:
        try:
            body = Path(source).read_bytes()
        except OSError as e:
            return fallback("failed", str(e))
        status = "file"
    if len(body) > settings.max_source_bytes:
        return fallback("rejected", "larger than max_source_bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return fallback("rejected", "not UTF-8 text")
    result = parse_text(text.splitlines())
    problem = _validate(result, previous_count, settings)
    if problem:
        return fallback("rejected", problem)
    cache.save(body, len(result.domains), etag, last_modified)
    return SourceResult(category, source, status, len(result.domains)), result.domains


def _builtin(category: str) -> set[str]:
    path = DATA_DIR / f"{category}.txt"
    return parse_text(path.read_text().splitlines()).domains if path.exists() else set()


def update(settings: BlocklistSettings) -> UpdateReport:
    """Refresh every source and publish a new generation if anything changed.

    Never raises for a bad source or a failed build: the report says what
    happened and the previous generation stays in place.
    """
    root = Path(settings.blocklist_dir)
    (root / SOURCES).mkdir(parents=True, exist_ok=True)
    (root / GENERATIONS).mkdir(parents=True, exist_ok=True)
    report = UpdateReport(ok=True, changed=False, generation=None)
    categories: dict[str, set[str]] = {}
    names = set(settings.sources) | set(settings.extra_categories)
    if settings.include_builtin:
        names |= set(builtin_categories())
    for category in sorted(names):
        domains: set[str] = set()
        if settings.include_builtin:
            builtin = _builtin(category)
            if builtin:
                report.sources.append(
                    SourceResult(category, f"builtin:{category}", "builtin", len(builtin))
                )
            domains |= builtin
        for source in settings.sources.get(category, []):
            result, found = _fetch_source(
                source, category, _SourceCache(root / SOURCES, source), settings
            )
            report.sources.append(result)
            if result.status in ("failed", "rejected"):
                report.ok = False
            domains |= found
        categories[category] = domains
    allow = parse_text(settings.allowlist).domains
    for source in settings.allowlist_sources:
        result, found = _fetch_source(
            source, "allowlist", _SourceCache(root / SOURCES, source), settings
        )
        report.sources.append(result)
        allow |= found
    report.counts = {c: len(d) for c, d in categories.items()}

    digest = hashlib.sha256()
    for category in sorted(categories):
        digest.update(
            category.encode() + b"\0" + "\n".join(sorted(categories[category])).encode() + b"\1"
        )
    digest.update("\n".join(sorted(allow)).encode() + f"\2{settings.trie_levels}".encode())
    content_digest = digest.hexdigest()
    current = current_generation(root)
    if current is not None:
        try:
            if json.loads((current / MANIFEST_FILE).read_text()).get("digest") == content_digest:
                report.generation = current.name
                return report
        except (OSError, ValueError):
            pass

    name = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1_000_000_000:09d}"
    building = root / GENERATIONS / f".{name}.building"
    try:
        build_store(
            building,
            categories,
            allow,
            {"digest": content_digest, "built_at": time.time()},
            trie_levels=settings.trie_levels,
        )
        final = root / GENERATIONS / name
        os.replace(building, final)
        tmp_link = root / f".{CURRENT}.{os.getpid()}.tmp"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(os.path.join(GENERATIONS, name), tmp_link)
        os.replace(tmp_link, root / CURRENT)
    except Exception as e:  # noqa: BLE001 - any build failure keeps the previous generation
        shutil.rmtree(building, ignore_errors=True)
        log.error("blocklist build failed, keeping the previous generation: %s", e)
        report.ok = False
        report.error = f"build failed: {e}"
        report.generation = current.name if current else None
        return report
    report.changed = True
    report.generation = name
    log.info(
        "blocklists: published generation %s (%s)",
        name,
        ", ".join(f"{c}={n}" for c, n in report.counts.items()),
    )
    _prune(root, keep=settings.keep_generations, current=name)
    return report


def _prune(root: Path, keep: int, current: str) -> None:
    """Drop old generations; running resolvers keep theirs mapped (unlinked files stay valid)."""
    gens = sorted(p for p in (root / GENERATIONS).iterdir() if not p.name.startswith("."))
    for old in gens[: max(0, len(gens) - keep)]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
