"""Settings for the blocklist updater (plain values; the CLI fills them from TOML)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class BlocklistSettings:
    blocklist_dir: Path = Path("/var/lib/ispedge/blocklists")
    # category -> URLs (http/https) or local file paths, added to the built-in list.
    sources: dict[str, list[str]] = field(default_factory=dict)
    # Operator categories with no source yet (they exist, empty, so policies may name them).
    extra_categories: list[str] = field(default_factory=list)
    allowlist: list[str] = field(default_factory=list)  # domains never blocked (with subdomains)
    allowlist_sources: list[str] = field(default_factory=list)
    include_builtin: bool = True
    max_shrink_fraction: float = 0.5
    max_reject_fraction: float = 0.2  # share of unreadable lines that rejects a download
    max_source_bytes: int = 256 * 1024 * 1024
    http_timeout_s: float = 30.0
    keep_generations: int = 3
    # 1 = fastest lookups; 3 = ~35% smaller store, ~2x slower hits (see store.build_store)
    trie_levels: int = 1

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> BlocklistSettings:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown blocklists settings: {sorted(unknown)}")
        values = dict(raw)
        if "blocklist_dir" in values:
            values["blocklist_dir"] = Path(str(values["blocklist_dir"]))
        return cls(**values)  # type: ignore[arg-type]
