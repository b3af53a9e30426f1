"""Plain rules: lockout tiers, client address, money parsing, config."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta

import pytest

from portal.config import ConfigError, load_config
from portal.core.auth.keys import KeyRing
from portal.core.auth.lockout import blocked_until
from portal.core.money import fmt, parse_amount, parse_whole
from portal.errors import PortalError
from portal.web.client_ip import client_ip, parse_networks

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def test_four_failures_do_not_block():
    assert blocked_until([ago(minutes=i) for i in range(4)], NOW) is None


def test_five_failures_within_the_window_block_for_fifteen_minutes():
    until = blocked_until([ago(minutes=i) for i in range(5)], NOW)
    assert until == NOW + timedelta(minutes=15)


def test_five_failures_spread_over_an_hour_do_not_block():
    assert blocked_until([ago(minutes=20 * i) for i in range(5)], NOW) is None


def test_block_ends_after_fifteen_minutes():
    fails = [ago(minutes=16 + i) for i in range(5)]
    assert blocked_until(fails, NOW) is None


def test_ten_failures_in_a_day_block_for_an_hour():
    fails = [ago(hours=5, minutes=i) for i in range(9)] + [NOW]
    assert blocked_until(fails, NOW) == NOW + timedelta(hours=1)


def test_twenty_failures_in_a_day_block_for_a_day():
    fails = [ago(hours=6, minutes=i) for i in range(19)] + [NOW]
    assert blocked_until(fails, NOW) == NOW + timedelta(hours=24)


def test_failures_older_than_a_day_are_forgotten():
    fails = [ago(hours=25, minutes=i) for i in range(30)]
    assert blocked_until(fails, NOW) is None


TRUSTED = parse_networks(["10.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(("peer", "xff", "expected"), [
    ("203.0.113.5", None, "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", "203.0.113.5"),           # untrusted peer: header ignored
    ("10.0.0.2", "1.2.3.4", "1.2.3.4"),                  # trusted proxy
    ("10.0.0.2", "6.6.6.6, 1.2.3.4", "1.2.3.4"),         # client forged the left part
    ("10.0.0.2", "1.2.3.4, 10.0.0.9", "1.2.3.4"),        # two trusted hops
    ("10.0.0.2", "garbage", "10.0.0.2"),
    ("::1", "2001:db8::7", "2001:db8::7"),
])
def test_client_ip(peer, xff, expected):
    assert client_ip(peer, xff, TRUSTED) == expected
    ipaddress.ip_address(client_ip(peer, xff, TRUSTED))


@pytest.mark.parametrize(("text", "cents"), [("12.50", 1250), ("0.01", 1), ("7", 700),
                                            (" 3.1 ", 310)])
def test_parse_amount(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["-1", "0", "abc", "1.001", "NaN", "Infinity", "", "1e12"])
def test_parse_amount_refuses(text):
    with pytest.raises(PortalError):
        parse_amount(text)


def test_fmt():
    assert fmt(1250) == "12.50"
    assert fmt(-5) == "-0.05"


# Issue 19: currencies with 0 and 3 minor units; digits as typed on Arabic and Persian
# keyboards (and the Arabic decimal separator).
@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("150000", "LBP", 150000), ("١٥٠٠٠٠", "LBP", 150000), ("۱۵۰۰۰۰", "LBP", 150000),
    ("1.250", "JOD", 1250), ("١٫٢٥٠", "JOD", 1250), ("7", "JOD", 7000), ("0.005", "JOD", 5),
    ("١٢٫٥٠", "USD", 1250), ("۱۲.۵", "USD", 1250), ("12.5", "EUR", 1250)])
def test_parse_amount_in_minor_units_of_the_currency(text, currency, minor):
    assert parse_amount(text, currency=currency) == minor


@pytest.mark.parametrize(("text", "currency"), [
    ("1.5", "LBP"), ("١٫٥", "LBP"), ("1.2345", "JOD"), ("1e3", "LBP"), ("1_000", "USD"),
    ("+5", "USD"), ("१२", "USD"), ("１２", "USD"), ("٠", "JOD"), ("-١", "USD"),
    ("10", "XYZ"), ("12.50", "usd")])
def test_parse_amount_refuses_in_currency(text, currency):
    with pytest.raises(PortalError):
        parse_amount(text, currency=currency)


def test_fmt_by_currency():
    assert fmt(150000, "LBP") == "150000"
    assert fmt(1250, "JOD") == "1.250" and fmt(-5, "JOD") == "-0.005"
    assert fmt(1250, "USD") == "12.50"
    assert fmt(1250, "QQQ") == "12.50"  # stored before codes were checked: never fails


def test_minor_units_table_is_the_portals_javascript_table():
    """static/app.js formats the API's minor units with its own copy of the table."""
    import re
    from pathlib import Path

    from portal.core.money import MINOR_UNITS

    js = (Path(__file__).resolve().parents[2] / "portal/web/static/app.js").read_text()
    block = re.search(r"const MINOR_UNITS = \{(.*?)\};", js, re.S)
    assert block is not None
    table = {k: int(v) for k, v in re.findall(r"([A-Z]{3}): ([0-9])", block.group(1))}
    assert table == MINOR_UNITS


@pytest.mark.parametrize(("text", "value"), [("12", 12), ("١٢", 12), ("۱۲", 12), (" 0 ", 0)])
def test_parse_whole(text, value):
    assert parse_whole(text, "limit") == value


@pytest.mark.parametrize("text", ["²", "1e3", "-1", "1.0", "", "١٫٢", "9" * 19, "१२"])
def test_parse_whole_refuses(text):
    with pytest.raises(PortalError) as e:
        parse_whole(text, "limit")
    assert e.value.code == "invalid_limit"


def test_config_defaults_are_embedded_mode(tmp_path):
    cfg = load_config(environ={"ISPEDGE_GENERAL_STATE_DIR": str(tmp_path)})
    assert cfg.database_url == f"sqlite://{tmp_path.resolve()}/ispedge.db"
    assert cfg.get("portal", "token_days") == 7


def test_config_file_and_env_override(tmp_path):
    path = tmp_path / "ispedge.toml"
    path.write_text('[portal]\nport = 9000\nhost = "0.0.0.0"\n[database]\nurl = "postgres://x/y"\n')
    cfg = load_config(str(path), environ={"ISPEDGE_PORTAL_PORT": "9100",
                                          "ISPEDGE_PORTAL_TRUSTED_PROXIES": "10.0.0.0/8,::1"})
    assert cfg.get("portal", "port") == 9100
    assert cfg.get("portal", "host") == "0.0.0.0"
    assert cfg.get("portal", "trusted_proxies") == ["10.0.0.0/8", "::1"]
    assert cfg.database_url == "postgres://x/y"


def test_config_env_var_names_the_file(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text("[portal]\nport = 9200\n")
    cfg = load_config(environ={"ISPEDGE_CONFIG": str(path)})
    assert cfg.path == path and cfg.get("portal", "port") == 9200


def test_config_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[portal\nport=")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="ISPEDGE_PORTAL_PORT"):
        load_config(environ={"ISPEDGE_PORTAL_PORT": "eighty"})


def test_signing_key_file_created_once_with_mode_0600(tmp_path):
    cfg = load_config(environ={"ISPEDGE_GENERAL_STATE_DIR": str(tmp_path)})
    key = KeyRing.from_config(cfg).current
    assert len(key) >= 32
    assert os.stat(tmp_path / "signing.keys").st_mode & 0o777 == 0o600
    assert KeyRing.from_config(cfg).current == key
