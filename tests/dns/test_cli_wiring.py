"""`ispedge dns` and `ispedge blocklists update`: config mapping, exit codes, real processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import pytest

from portal.cli.dns import blocklist_settings, demo_settings, dns_settings, start_child
from portal.config import ConfigError, load_config
from tests.dns.conftest import Launcher, free_port
from tests.dns.test_resolver_process import dig, status
from tests.support import forkserver
from tests.support.portal import portal_env


def test_dns_settings_default_to_the_portals_database_and_state_dir(tmp_path: Path) -> None:
    config = load_config(None, {"ISPEDGE_GENERAL_STATE_DIR": str(tmp_path)})
    s = dns_settings(config)
    assert s.database_url == f"sqlite://{(tmp_path / 'ispedge.db').resolve()}"
    assert s.state_dir == tmp_path / "dns"
    assert s.blocklist_dir == tmp_path / "blocklists"
    assert blocklist_settings(config).blocklist_dir == tmp_path / "blocklists"


def test_empty_paths_in_the_file_mean_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "ispedge.toml"
    path.write_text('[dns]\ndatabase_url = ""\nstate_dir = ""\n[blocklists]\nblocklist_dir = ""\n')
    config = load_config(str(path), {"ISPEDGE_GENERAL_STATE_DIR": str(tmp_path)})
    assert dns_settings(config).state_dir == tmp_path / "dns"
    assert dns_settings(config).database_url == config.database_url
    assert blocklist_settings(config).blocklist_dir == tmp_path / "blocklists"


def test_config_file_and_environment_fill_typed_settings(tmp_path: Path) -> None:
    path = tmp_path / "ispedge.toml"
    path.write_text('[database]\nurl = "postgres://u@db/ispedge"\n'
                    '[dns]\nupstreams = ["192.0.2.53:53"]\nblock_mode = "null"\n'
                    '[blocklists]\nblocklist_dir = "/srv/bl"\nextra_categories = ["vpn"]\n'
                    'sources = {malware = ["https://example.net/m.txt"]}\n')
    env = {"ISPEDGE_DNS_LISTEN_PORT": "5300", "ISPEDGE_DNS_RATE_LIMIT_QPS": "50.5",
           "ISPEDGE_DNS_SERVED_NETWORKS": "10.0.0.0/8, 100.64.0.0/10",
           "ISPEDGE_DNS_BLOCK_LOG": "no", "ISPEDGE_DNS_WORKERS": "auto"}
    config = load_config(str(path), env)
    s = dns_settings(config)
    assert (s.listen_port, s.rate_limit_qps, s.block_log, s.workers) == (5300, 50.5, False,
                                                                          "auto")
    assert s.served_networks == ["10.0.0.0/8", "100.64.0.0/10"]
    assert s.upstreams == ["192.0.2.53:53"] and s.block_mode == "null"
    assert s.database_url == "postgres://u@db/ispedge"
    assert s.blocklist_dir == Path("/srv/bl")  # the resolver reads where the updater writes
    b = blocklist_settings(config)
    assert b.extra_categories == ["vpn"] and b.sources == {"malware":
                                                           ["https://example.net/m.txt"]}


@pytest.mark.parametrize(("section", "env", "message"), [
    ("dns", {"ISPEDGE_DNS_LISTEN_PORT": "fifty"}, "bad value"),
    ("dns", {"ISPEDGE_DNS_BLOCK_MODE": "drop"}, "block_mode"),
    ("blocklists", {"ISPEDGE_BLOCKLISTS_TRIE_LEVELS": "x"}, "bad value"),
])
def test_bad_values_are_config_errors(section: str, env: dict[str, str], message: str) -> None:
    config = load_config(None, env)
    with pytest.raises(ConfigError, match=message):
        dns_settings(config) if section == "dns" else blocklist_settings(config)


def test_unknown_keys_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "ispedge.toml"
    path.write_text("[dns]\nlisten_prot = 53\n")
    with pytest.raises(ConfigError, match="listen_prot"):
        dns_settings(load_config(str(path), {}))


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run(list(args), portal_env("", tmp_path / "state", **env), timeout=120)


def test_blocklists_update_exit_codes(tmp_path: Path) -> None:
    ok = run_cli(tmp_path, "blocklists", "update", "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and report["counts"]["gambling"] > 0
    assert (tmp_path / "state" / "blocklists" / "current").is_symlink()
    # a source that cannot be fetched: its last good copy (none) is used, exit 1
    bad = run_cli(tmp_path, "blocklists", "update",
                  ISPEDGE_BLOCKLISTS_EXTRA_CATEGORIES="vpn",
                  ISPEDGE_CONFIG=str(_toml(tmp_path, '[blocklists]\nsources = {vpn = '
                                                     '["http://127.0.0.1:1/vpn.txt"]}\n')))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "vpn: http://127.0.0.1:1/vpn.txt: failed" in bad.stdout
    # the build itself fails (generations is not a directory): exit 2, old store kept
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "generations").write_text("not a directory")
    failed = run_cli(tmp_path, "blocklists", "update", ISPEDGE_BLOCKLISTS_BLOCKLIST_DIR=str(broken))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "build failed" in failed.stdout + failed.stderr
    unusable = run_cli(tmp_path, "blocklists", "update",
                       ISPEDGE_BLOCKLISTS_BLOCKLIST_DIR=str(broken / "generations" / "x"))
    assert unusable.returncode == 2 and "build failed" in unusable.stderr


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ispedge.toml"
    path.write_text(text)
    return path


def test_ispedge_dns_serves_and_stops_on_sigterm(tmp_path: Path, launcher: Launcher) -> None:
    auth = launcher.authserver()
    port = free_port()
    log = tmp_path / "dns.log"
    env = portal_env("", tmp_path / "state", ISPEDGE_DNS_LISTEN_ADDRESS="127.0.0.1",
                     ISPEDGE_DNS_LISTEN_PORT=str(port), ISPEDGE_DNS_METRICS_PORT="0",
                     ISPEDGE_DNS_UPSTREAMS=f"127.0.0.1:{auth.port}",
                     ISPEDGE_DNS_SERVED_NETWORKS="127.0.0.0/8",
                     ISPEDGE_DNS_DEFAULT_CATEGORIES="gambling")
    env.pop("ISPEDGE_DATABASE_URL")  # the default: <state_dir>/ispedge.db (no schema: fine)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "portal.main", "dns"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "READY" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert dig(port, "+short", "example.test", source="127.0.0.9").strip() == "192.0.2.1"
        assert status(dig(port, "www.bet365.com", source="127.0.0.9")) == "NXDOMAIN"
        assert (tmp_path / "state" / "blocklists" / "current").is_symlink()
        assert (tmp_path / "state" / "dns").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    assert code == 0, log.read_text()


def test_the_demo_resolver_rate_limits_each_source(tmp_path: Path, launcher: Launcher) -> None:
    """`ispedge demo` starts its resolver with rate limiting on (it was off): a flood from
    one demo home is dropped past the burst while another home is answered at once."""
    auth = launcher.authserver()
    config = load_config(None, {"ISPEDGE_GENERAL_STATE_DIR": str(tmp_path),
                                "ISPEDGE_DNS_UPSTREAMS": f"127.0.0.1:{auth.port}"})
    settings = demo_settings(config, tmp_path)
    assert (settings.rate_limit_qps, settings.rate_limit_burst) == (200.0, 400)
    assert settings.served_networks == ["127.0.0.0/8"] and settings.listen_address == "127.0.0.1"
    child, ready = start_child(settings, tmp_path / "dns.log")
    try:
        assert ready, (tmp_path / "dns.log").read_text()
        port = settings.listen_port
        assert dig(port, "+short", "example.test", source="127.1.0.5").strip() == "192.0.2.1"
        wire = dns.message.make_query("example.test", "A").to_wire()
        answered = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.1.0.7", 0))
            s.setblocking(False)

            def drain() -> int:
                n = 0
                while True:
                    try:
                        s.recv(4096)
                    except BlockingIOError:
                        return n
                    n += 1

            started = time.monotonic()
            for _ in range(100):  # 2,000 in about a second: ten times the limit
                for _ in range(20):
                    s.sendto(wire, ("127.0.0.1", port))
                time.sleep(0.01)
                answered += drain()  # a few at a time: our own receive buffer never fills
            elapsed = time.monotonic() - started
            time.sleep(0.5)
            answered += drain()
        # the burst, plus what the rate refilled while sending (and the 0.5 s wait)
        assert 400 <= answered <= 400 + 200 * (elapsed + 0.6) + 20, (answered, elapsed)
        assert dig(port, "+short", "example.test", source="127.1.0.5").strip() == "192.0.2.1"
    finally:
        child.stop()
