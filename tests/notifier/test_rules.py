"""The notifier's rules as plain functions: quiet hours, preferences, push subscriptions and
addresses, the template sandbox, the gateway's encoding, backoff. No database, no server."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core import notify_templates
from portal.core.notifications import Prefs, check_prefs, check_push_subscription, quiet_until
from portal.errors import PortalError
from portal.notifier import outbox
from portal.notifier.channels import gateway, push
from portal.notifier.settings import Gateway, Smtp
from tests.notifier.sinks import Browser

AT = datetime(2026, 12, 2, 0, 0)


@pytest.mark.parametrize(("start", "end", "now", "until"), [
    ("22:00", "07:00", "23:30", "2026-12-03 07:00"),  # spans midnight, before it
    ("22:00", "07:00", "03:10", "2026-12-02 07:00"),  # spans midnight, after it
    ("22:00", "07:00", "07:00", None),  # the end is outside
    ("22:00", "07:00", "21:59", None),
    ("22:00", "07:00", "22:00", "2026-12-03 07:00"),
    ("12:00", "14:00", "13:00", "2026-12-02 14:00"),
    ("12:00", "14:00", "14:30", None),
    ("", "", "03:00", None),
])
def test_quiet_hours(start: str, end: str, now: str, until: str | None) -> None:
    h, m = (int(x) for x in now.split(":"))
    got = quiet_until(Prefs(quiet_start=start, quiet_end=end), AT.replace(hour=h, minute=m))
    assert (got.strftime("%Y-%m-%d %H:%M") if got else None) == until


@pytest.mark.parametrize("bad", [
    {"quiet_start": "22:00"}, {"quiet_start": "24:00", "quiet_end": "06:00"},
    {"quiet_start": "7:00", "quiet_end": "08:00"}, {"quiet_start": "08:00", "quiet_end": "08:00"},
    {"email": 1}, {"push": "true"}, {"other": True}, [], "x", None,
    {"quiet_start": 2200, "quiet_end": "06:00"},
])
def test_bad_preferences_are_refused(bad: object) -> None:
    with pytest.raises(PortalError):
        check_prefs(bad)


def test_preferences_default_to_every_channel() -> None:
    assert check_prefs({}) == Prefs()
    assert check_prefs({"sms": False, "quiet_start": "21:30", "quiet_end": "06:45"}) == Prefs(
        sms=False, quiet_start="21:30", quiet_end="06:45")


def test_push_subscription_shape() -> None:
    keys = Browser().keys()
    ok = check_push_subscription({"endpoint": "https://fcm.example/x/y?z=1", "keys": keys})
    assert ok.endpoint == "https://fcm.example/x/y?z=1" and ok.p256dh == keys["p256dh"]
    for endpoint in ("http://fcm.example/x", "https://user@fcm.example/x", "https://",
                     "https://fcm.example:99999/x", "javascript:alert(1)",
                     "https://fcm.example/a b", "https://fcm.example/" + "a" * 1000, 7):
        with pytest.raises(PortalError):
            check_push_subscription({"endpoint": endpoint, "keys": keys})
    for k in ({"p256dh": keys["p256dh"]}, {"p256dh": "AAAA", "auth": keys["auth"]},
              {"p256dh": keys["p256dh"], "auth": "!!!"}, {"p256dh": "A" * 87,
                                                         "auth": keys["auth"]}):
        with pytest.raises(PortalError):
            check_push_subscription({"endpoint": "https://fcm.example/x", "keys": k})


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2a00:1450:4001::200e", True), ("127.0.0.1", False),
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("100.64.0.1", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("224.0.0.1", False), ("::1", False),
    ("fe80::1", False), ("fc00::1", False), ("::ffff:10.0.0.1", False),
    ("::ffff:8.8.8.8", True), ("255.255.255.255", False), ("192.0.2.1", False),
])
def test_only_public_addresses(address: str, public: bool) -> None:
    assert push.public(ipaddress.ip_address(address)) is public


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(push.Refused, match="non-public"):
        await push.resolve_public("localhost", 443)
    with pytest.raises(push.Refused):
        await push.resolve_public("10.0.0.1", 443)
    assert str(await push.resolve_public("1.1.1.1", 443)) == "1.1.1.1"


def test_web_push_payload_decrypts_with_the_subscription_keys() -> None:
    browser = Browser()
    body = push.encrypt(b'{"title": "hi"}', browser.keys()["p256dh"], browser.keys()["auth"])
    assert browser.decrypt(body) == {"title": "hi"}
    # A fresh ephemeral key each time: the same message never looks the same twice.
    assert push.encrypt(b"x", **browser.keys()) != push.encrypt(b"x", **browser.keys())
    with pytest.raises(Exception):  # noqa: B017 - another browser's keys cannot read it
        Browser().decrypt(body)


VALUES = {"name": "N", "username": "u", "company": "C", "portal_url": "https://p/",
          "days": 3, "expires_on": "2026-12-05", "plan": "Basic"}


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ name.__class__ }}",
    "{{ cycler.__init__.__globals__ }}", "{{ self._TemplateReference__context }}",
    "{{ undefined_variable }}", "{% for x in range(10**9) %}{% endfor %}",
])
def test_templates_cannot_reach_python(template: str) -> None:
    with pytest.raises(PortalError):
        notify_templates.check_template("expiry_soon", "s", template)


def test_templates_get_only_the_event_variables() -> None:
    with pytest.raises(ValueError):
        notify_templates.render("expiry_soon", "email", {**VALUES, "secret": "x"})
    with pytest.raises(ValueError):
        notify_templates.render("expiry_soon", "email", {**VALUES, "plan": object()})
    got = notify_templates.render("expiry_soon", "email", VALUES)
    assert got.subject == "Your Basic plan expires in 3 days"


@given(st.text(max_size=60))
def test_subjects_never_carry_a_line_break(name: str) -> None:
    values = {k: v for k, v in VALUES.items() if k != "days"}
    got = notify_templates.render("expired", "email", {**values, "name": name, "plan": name})
    assert not any(c in got.subject for c in "\r\n\x0b\x0c\x85\u2028\u2029")
    assert got.subject == notify_templates.one_line(got.subject)


def test_template_choice_reseller_then_default_then_builtin() -> None:
    stored = {(7, "fr", "receipt", "email"): ("fr7", ""), (None, "fr", "receipt", "email"):
              ("fr*", ""), (None, "en", "receipt", "email"): ("en*", "")}
    assert notify_templates.pick(stored, 7, "fr", "receipt", "email") == ("fr7", "")
    assert notify_templates.pick(stored, 8, "fr", "receipt", "email") == ("fr*", "")
    # Arabic has built-in texts (tests/notifier/test_languages.py): they, not 'en', next.
    assert notify_templates.pick(stored, 8, "ar", "receipt", "email") is None
    assert notify_templates.pick(stored, 8, "en", "receipt", "email") == ("en*", "")
    assert notify_templates.pick(stored, 8, "ar", "receipt", "sms") is None


@pytest.mark.parametrize("ctype", ["application/json", "application/x-www-form-urlencoded"])
def test_gateway_values_are_encoded_for_where_they_go(ctype: str) -> None:
    text = 'Hello "Zoë" & co\n{{ 7*7 }} %20 +'
    body = ('{"to": {{ to }}, "text": {{ text }}}' if ctype == "application/json"
            else "to={{ to }}&text={{ text }}&from=ISP")
    cfg = Gateway("https://sms.example/send?to={{ to }}&msg={{ text }}&key=a%2Fb", "POST",
                  (("Authorization", "Bearer k"),), body, ctype)
    url, sent, headers = gateway.build(cfg, {"target": "+1 555&x=1", "body": text,
                                             "subject": "s"})
    query = parse_qs(urlsplit(url).query)
    assert query == {"to": ["+1 555&x=1"], "msg": [text], "key": ["a/b"]}
    if ctype == "application/json":
        assert json.loads(sent) == {"to": "+1 555&x=1", "text": text}
    else:
        assert parse_qs(sent.decode()) == {"to": ["+1 555&x=1"], "text": [text], "from": ["ISP"]}
    assert headers["Authorization"] == "Bearer k"


def test_a_broken_gateway_template_is_a_permanent_failure() -> None:
    cfg = Gateway("https://sms.example/{{ nope }}", "POST", (), "", "application/json")
    with pytest.raises(gateway.SendError) as err:
        gateway.build(cfg, {"target": "1", "body": "b", "subject": ""})
    assert err.value.retry is False


def test_mail_headers_hold_no_line_breaks() -> None:
    from portal.notifier.channels import smtp

    raw = smtp.build(Smtp("h", sender="noc@isp.example"), {
        "id": 5, "target": "a@b.example", "subject": notify_templates.one_line(
            "Hi\r\nBcc: victim@x.example"), "body": "line1\r\n.\r\nline3"})
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"Subject: Hi Bcc: victim@x.example" in head
    assert b"Message-ID: <" in head and b"ispedge-notification-5" in head


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert [outbox.backoff(n, 30, 600) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
