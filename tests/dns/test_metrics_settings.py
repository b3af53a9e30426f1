"""Metrics rendering (summed over workers) and settings validation."""

from __future__ import annotations

import pytest

from dns_filter.metrics import Metrics, render
from dns_filter.safesearch import BING, DUCKDUCKGO, GOOGLE, YOUTUBE, safesearch_target
from dns_filter.settings import DnsSettings, parse_hostport


def test_render_sums_workers_and_keeps_histogram_cumulative() -> None:
    a, b = Metrics(), Metrics()
    a.queries["cached"] += 3
    a.queries["forwarded"] += 1
    b.queries["cached"] += 1
    b.blocks["adult"] += 2
    a.observe_upstream("u1", 0.5)
    b.observe_upstream("u1", 30)
    b.upstream_failures["u1"] += 1
    a.gauges["policy_table_size"] = 10
    b.gauges["policy_table_size"] = 10
    a.gauges["policy_age_seconds"] = 1.5
    b.gauges["policy_age_seconds"] = 2.5
    text = render([a.snapshot(), b.snapshot()])
    assert 'ispedge_dns_queries_total{result="cached"} 4' in text
    assert 'ispedge_dns_blocked_total{category="adult"} 2' in text
    assert "ispedge_dns_cache_hit_ratio 0.800000" in text
    assert 'ispedge_dns_upstream_latency_ms_bucket{upstream="u1",le="1"} 1' in text
    assert 'ispedge_dns_upstream_latency_ms_bucket{upstream="u1",le="50"} 2' in text
    assert 'ispedge_dns_upstream_latency_ms_count{upstream="u1"} 2' in text
    assert 'ispedge_dns_upstream_failures_total{upstream="u1"} 1' in text
    assert "ispedge_dns_policy_table_size 10" in text
    assert "ispedge_dns_policy_age_seconds 2.5" in text
    assert render([]).startswith("# HELP")


def test_hosted_queues_add_up_over_workers() -> None:
    a, b, c = Metrics(), Metrics(), Metrics()
    a.gauges["udp_queues_hosted"] = 2  # worker 0 reads workers 2 and 3's sockets
    b.gauges["udp_queues_hosted"] = 1
    c.gauges["udp_queues_hosted"] = 0
    assert "ispedge_dns_udp_queues_hosted 3" in render([a.snapshot(), b.snapshot(), c.snapshot()])


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_udp_handover_is_true_or_false(value: object) -> None:
    with pytest.raises(ValueError, match="udp_handover"):
        DnsSettings(upstreams=["127.0.0.1:53"], udp_handover=value)  # type: ignore[arg-type]
    assert DnsSettings(upstreams=["127.0.0.1:53"], udp_handover=False).udp_handover is False


def test_settings_validation_and_parsing() -> None:
    s = DnsSettings.from_dict({"listen_port": 5353, "workers": "auto", "state_dir": "/tmp/x"})
    assert s.listen_port == 5353 and s.worker_count() >= 1 and str(s.state_dir) == "/tmp/x"
    assert DnsSettings(workers=3).worker_count() == 3
    with pytest.raises(ValueError, match="unknown"):
        DnsSettings.from_dict({"listen_prot": 53})
    with pytest.raises(ValueError, match="block_mode"):
        DnsSettings(block_mode="sinkhole")
    with pytest.raises(ValueError, match="blocked_page"):
        DnsSettings(block_mode="page")
    with pytest.raises(ValueError, match="upstream"):
        DnsSettings(upstreams=[])
    with pytest.raises(ValueError, match="cpu_scheduling"):
        DnsSettings(cpu_scheduling="realtime")
    assert DnsSettings.from_dict(DnsSettings().to_dict()) == DnsSettings()
    assert parse_hostport("9.9.9.9") == ("9.9.9.9", 53)
    assert parse_hostport("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_hostport("[2620:fe::fe]:5353") == ("2620:fe::fe", 5353)
    assert parse_hostport("2620:fe::fe") == ("2620:fe::fe", 53)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("www.google.com", GOOGLE),
        ("google.com", GOOGLE),
        ("www.google.co.uk", GOOGLE),
        ("www.google.com.br", GOOGLE),
        ("www.google.de", GOOGLE),
        ("mail.google.com", None),
        ("google.example.com", None),
        ("www.youtube.com", YOUTUBE),
        ("m.youtube.com", YOUTUBE),
        ("youtubei.googleapis.com", YOUTUBE),
        ("www.bing.com", BING),
        ("duckduckgo.com", DUCKDUCKGO),
        ("example.com", None),
    ],
)
def test_safesearch_targets(name: str, target: str | None) -> None:
    assert safesearch_target(name) == target


def test_cpu_scheduling_that_the_kernel_refuses_is_logged_not_fatal(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import os

    from dns_filter import server

    def refuse(pid: int, policy: int, param: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_OTHER)
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level("WARNING", logger="ispedge.dns"):
        server.set_cpu_scheduling("batch")
    assert "cpu_scheduling 'batch' not applied" in caplog.text


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # one worker: nothing to take turns with, so the default Linux policy, whose
        # wake-up preemption gets an answer the CPU ahead of the box's other daemons
        ({}, ("normal", 0.0)),
        ({"workers": 1}, ("normal", 0.0)),
        # several: batch, so siblings on one core take turns in 20 ms bursts
        ({"workers": 2}, ("batch", 20.0)),
        ({"workers": 2, "cpu_slice_ms": 0}, ("batch", 0.0)),
        ({"workers": 3, "cpu_scheduling": "normal"}, ("normal", 0.0)),
        ({"cpu_scheduling": "batch"}, ("batch", 20.0)),
        ({"cpu_scheduling": "normal", "cpu_slice_ms": 0.5}, ("normal", 0.5)),
    ],
)
def test_cpu_scheduling_auto_follows_the_worker_count(
        settings: dict[str, object], expected: tuple[str, float]) -> None:
    assert DnsSettings.from_dict({"upstreams": ["127.0.0.1:53"], **settings}).scheduling() \
        == expected


@pytest.mark.parametrize("value", [0.05, 101, -1, "20", True])
def test_cpu_slice_outside_the_kernels_range_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="cpu_slice_ms"):
        DnsSettings(upstreams=["127.0.0.1:53"], cpu_slice_ms=value)  # type: ignore[arg-type]


def test_cpu_slice_the_kernel_refuses_or_ignores_is_logged_not_fatal(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import os

    from dns_filter import cpuslice, server

    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_BATCH)

    def refuse(policy: int, slice_ms: float) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(cpuslice, "set_slice", refuse)
    with caplog.at_level("INFO", logger="ispedge.dns"):
        server.set_cpu_scheduling("batch", 20)
    assert "cpu_slice_ms 20 not applied" in caplog.text
    caplog.clear()
    monkeypatch.setattr(cpuslice, "set_slice", lambda policy, slice_ms: 0)  # a 6.6 kernel
    with caplog.at_level("INFO", logger="ispedge.dns"):
        server.set_cpu_scheduling("batch", 20)
    assert "this kernel has no custom slices" in caplog.text


def test_cpu_slice_on_a_machine_without_known_syscall_numbers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import platform

    from dns_filter import cpuslice

    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    with pytest.raises(OSError) as raised:
        cpuslice.get_attr()
    assert raised.value.errno == errno.ENOSYS


def test_cpu_slice_keeps_the_nice_value_the_service_was_given() -> None:
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import os; from dns_filter import cpuslice; os.nice(5); "
        "cpuslice.set_slice(os.SCHED_BATCH, 20); "
        "print(os.getpriority(os.PRIO_PROCESS, 0), cpuslice.get_attr()[:2] == (os.SCHED_BATCH, 5))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    assert out.stdout.split() == ["5", "True"]


def test_assignments_read_json_values_and_keep_text_and_refuse_what_is_not_a_pair():
    from dns_filter.settings import assignments

    got = assignments(["cpu_slice_ms=0.5", "cpu_scheduling=normal", "udp_handover=false",
                       "nas=[\"10.0.0.1\"]", "blocked_page_ipv4="])
    assert got == {"cpu_slice_ms": 0.5, "cpu_scheduling": "normal", "udp_handover": False,
                   "nas": ["10.0.0.1"], "blocked_page_ipv4": ""}
    assert DnsSettings.from_dict({"upstreams": ["127.0.0.1:53"], **got}).cpu_slice_ms == 0.5
    for bad in ("cpu_slice_ms", "=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            assignments([bad])
