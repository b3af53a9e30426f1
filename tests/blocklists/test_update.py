"""The updater against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from blocklists.settings import BlocklistSettings
from blocklists.store import DomainStore
from blocklists.update import current_generation, update


class ListServer:
    """Serves `bodies[path]` with an ETag and Last-Modified; honours conditional GETs."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.requests: list[tuple[str, str | None, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(
                    (
                        self.path,
                        self.headers.get("If-None-Match"),
                        self.headers.get("If-Modified-Since"),
                    )
                )
                if self.path in outer.status:
                    self.send_error(outer.status[self.path])
                    return
                body = outer.bodies.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Wed, 01 Jan 2025 00:00:00 GMT")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http() -> Iterator[ListServer]:
    server = ListServer()
    yield server
    server.close()


def domains(n: int, prefix: str = "d") -> bytes:
    return "".join(f"0.0.0.0 {prefix}{i}.example\n" for i in range(n)).encode()


def settings(tmp_path: Path, url: str, **kw: object) -> BlocklistSettings:
    return BlocklistSettings(blocklist_dir=tmp_path / "bl", sources={"gambling": [url]}, **kw)  # type: ignore[arg-type]


def store(tmp_path: Path) -> DomainStore:
    path = current_generation(tmp_path / "bl")
    assert path is not None
    return DomainStore(path)


def test_fetch_build_and_conditional_get(http: ListServer, tmp_path: Path) -> None:
    http.bodies["/g.txt"] = domains(100)
    s = settings(tmp_path, http.url + "/g.txt")
    report = update(s)
    assert report.ok and report.changed
    assert report.counts["gambling"] == 100 + 26  # plus the built-in gambling list
    assert "adult" in report.counts  # built-in categories always present
    st = store(tmp_path)
    assert st.lookup("www.d5.example") == st.bits["gambling"]
    assert st.lookup("bet365.com") == st.bits["gambling"]
    # second run: conditional GET answered 304, nothing rebuilt
    again = update(s)
    assert again.ok and not again.changed
    assert [r.status for r in again.sources if r.source.startswith("http")] == ["not-modified"]
    assert http.requests[-1][1] is not None and http.requests[-1][2] is not None


def test_new_content_publishes_new_generation_atomically(http: ListServer, tmp_path: Path) -> None:
    http.bodies["/g.txt"] = domains(100)
    s = settings(tmp_path, http.url + "/g.txt")
    first = update(s).generation
    old_path = current_generation(tmp_path / "bl")
    old = DomainStore(old_path)  # a running resolver keeps its mapping
    http.bodies["/g.txt"] = domains(100) + b"newcasino.example\n"
    report = update(s)
    assert report.changed and report.generation != first
    assert store(tmp_path).lookup("newcasino.example")
    assert old.lookup("newcasino.example") == 0 and old.lookup("d1.example")
    assert os.path.islink(tmp_path / "bl" / "current")


def test_shrunk_list_is_rejected_and_previous_kept(http: ListServer, tmp_path: Path) -> None:
    http.bodies["/g.txt"] = domains(100)
    s = settings(tmp_path, http.url + "/g.txt", max_shrink_fraction=0.5)
    update(s)
    http.bodies["/g.txt"] = domains(10)
    report = update(s)
    assert not report.ok
    (src,) = [r for r in report.sources if r.source.startswith("http")]
    assert src.status == "rejected" and "shrank" in src.error and src.domains == 100
    assert store(tmp_path).lookup("d50.example")


def test_unparseable_list_is_rejected(http: ListServer, tmp_path: Path) -> None:
    http.bodies["/g.txt"] = domains(50)
    s = settings(tmp_path, http.url + "/g.txt")
    update(s)
    http.bodies["/g.txt"] = b"<html><body>Service temporarily unavailable</body></html>\n" * 20
    report = update(s)
    (src,) = [r for r in report.sources if r.source.startswith("http")]
    assert src.status == "rejected" and "unreadable" in src.error
    assert store(tmp_path).lookup("d49.example")
    http.bodies["/g.txt"] = b"\xff\xfe\x00binary"
    (src,) = [r for r in update(s).sources if r.source.startswith("http")]
    assert src.status == "rejected"


def test_server_errors_keep_previous_copy(http: ListServer, tmp_path: Path) -> None:
    http.bodies["/g.txt"] = domains(30)
    s = settings(tmp_path, http.url + "/g.txt")
    update(s)
    http.status["/g.txt"] = 500
    report = update(s)
    (src,) = [r for r in report.sources if r.source.startswith("http")]
    assert not report.ok and src.status == "failed" and src.domains == 30
    http.close()
    report = update(s)
    assert not report.ok and store(tmp_path).lookup("d29.example")


def test_first_fetch_failure_still_publishes_builtin(tmp_path: Path) -> None:
    s = settings(tmp_path, "http://127.0.0.1:9/none.txt", http_timeout_s=2)
    report = update(s)
    assert not report.ok and report.changed
    assert store(tmp_path).lookup("bet365.com")


def test_allowlist_and_operator_categories(http: ListServer, tmp_path: Path) -> None:
    http.bodies["/allow.txt"] = b"d7.example\n"
    local = tmp_path / "crypto.txt"
    local.write_text("||coin.example^\n")
    s = BlocklistSettings(
        blocklist_dir=tmp_path / "bl",
        sources={"gambling": [], "crypto": [str(local)]},
        extra_categories=["custom-empty"],
        allowlist=["www.bet365.com"],
        allowlist_sources=[http.url + "/allow.txt"],
    )
    update(s)
    st = store(tmp_path)
    assert st.lookup("a.coin.example") == st.bits["crypto"]
    assert st.lookup("bet365.com") and st.lookup("www.bet365.com") == 0
    assert "custom-empty" in st.categories


def test_build_failure_keeps_previous_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = BlocklistSettings(blocklist_dir=tmp_path / "bl")
    update(s)
    before = current_generation(tmp_path / "bl")
    local = tmp_path / "x.txt"
    local.write_text("new.example\n")
    s.sources = {"gambling": [str(local)]}

    def broken(*args: object, **kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(importlib.import_module("blocklists.update"), "build_store", broken)
    report = update(s)
    assert not report.ok and "disk full" in report.error
    assert current_generation(tmp_path / "bl") == before
    assert not [p for p in (tmp_path / "bl" / "generations").iterdir() if p.name.startswith(".")]


def test_old_generations_are_pruned(tmp_path: Path) -> None:
    local = tmp_path / "x.txt"
    s = BlocklistSettings(
        blocklist_dir=tmp_path / "bl", sources={"gambling": [str(local)]}, keep_generations=2
    )
    for i in range(5):
        local.write_text("".join(f"g{i}-{j}.example\n" for j in range(10 + i)))
        assert update(s).changed
    assert len(list((tmp_path / "bl" / "generations").iterdir())) == 2


def test_command_line_entry(http: ListServer, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    http.bodies["/g.txt"] = domains(5)
    cfg = tmp_path / "bl.json"
    cfg.write_text(
        json.dumps(
            {"blocklist_dir": str(tmp_path / "bl"), "sources": {"gambling": [http.url + "/g.txt"]}}
        )
    )
    root = Path(__file__).resolve().parents[2]
    ok = subprocess.run(
        [sys.executable, "-m", "blocklists", "--config-json", str(cfg)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["changed"] is True
    http.status["/g.txt"] = 503
    failed = subprocess.run(
        [sys.executable, "-m", "blocklists", "--config-json", str(cfg)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1 and json.loads(failed.stdout)["ok"] is False


def test_settings_from_dict() -> None:
    s = BlocklistSettings.from_dict(
        {"blocklist_dir": "/tmp/x", "sources": {"adult": ["https://example/list"]}}
    )
    assert s.blocklist_dir == Path("/tmp/x") and s.sources["adult"] == ["https://example/list"]
    with pytest.raises(ValueError, match="unknown"):
        BlocklistSettings.from_dict({"blocklist_dri": "/tmp/x"})
