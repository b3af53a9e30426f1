"""Upstream health and reply acceptance (the network behaviour is in test_resolver_process)."""

from __future__ import annotations

import dns.message

from dns_filter.metrics import Metrics
from dns_filter.upstream import DOWN_AFTER_FAILURES, Upstream, UpstreamPool, _accept


def test_upstream_marked_down_after_consecutive_failures_and_tried_last() -> None:
    pool = UpstreamPool(["127.0.0.1:5301", "[::1]:5302", "127.0.0.1:5303"], 1.0, None, Metrics())  # type: ignore[arg-type]
    first, second, third = pool.upstreams
    assert (second.host, second.port) == ("::1", 5302)
    assert pool.ordered() == [first, second, third]
    for _ in range(DOWN_AFTER_FAILURES):
        first.record_failure(now=0.0 + 1e9)
    assert pool.ordered() == [second, third, first]
    first.record_success(3.0)
    assert pool.ordered() == [first, second, third] and first.latency_ms == 3.0


def test_single_failure_does_not_mark_down() -> None:
    u = Upstream("127.0.0.1:53")
    u.record_failure(now=100.0)
    assert u.healthy(100.0)


def test_accept_rejects_spoofed_or_mismatched_replies() -> None:
    query = dns.message.make_query("Example.test", "A")
    query.id = 0x1234
    reply = dns.message.make_response(query).to_wire()
    question = query.to_wire()[12:]
    question = question[: len(question)].lower()
    txid = b"\x12\x34"
    assert _accept(reply, txid, question)
    assert not _accept(reply, b"\x12\x35", question)  # wrong ID
    assert not _accept(query.to_wire(), txid, question)  # not a response
    other = dns.message.make_response(dns.message.make_query("other.test", "A"))
    other.id = 0x1234
    assert not _accept(other.to_wire(), txid, question)  # wrong question
    truncated_without_question = txid + bytes([0x82, 0x00]) + b"\x00" * 8
    assert _accept(truncated_without_question, txid, question)  # leads only to a TCP retry
    assert not _accept(b"\x12", txid, question)
