"""dns_filter._mmsg: a burst of datagrams in one recvmmsg, their answers in one sendmmsg."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dns_filter import udp
from tests.support.requirements import need_mmsg


@pytest.fixture
def mmsg():  # noqa: ANN201
    need_mmsg()
    return udp._mmsg


def bound(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server = bound(socket.AF_INET, "127.0.0.1")
    client = bound(socket.AF_INET, "127.0.0.1")
    client.settimeout(2)
    yield server, client
    server.close()
    client.close()


def test_an_empty_queue_gives_an_empty_burst(mmsg, pair) -> None:  # noqa: ANN001
    server, _ = pair
    assert mmsg.recv_burst(server.fileno(), 64) == []


def test_a_burst_holds_at_most_max_and_keeps_order(mmsg, pair) -> None:  # noqa: ANN001
    server, client = pair
    sent = [b"q%d" % i for i in range(70)]
    for q in sent:
        client.sendto(q, server.getsockname())
    first = mmsg.recv_burst(server.fileno(), 64)
    rest = mmsg.recv_burst(server.fileno(), 64)
    assert [d for d, _, _ in first + rest] == sent
    assert len(first) == 64
    assert {h for _, h, _ in first} == {"127.0.0.1"}


def test_answers_go_back_to_each_peer(mmsg, pair) -> None:  # noqa: ANN001
    server, client = pair
    other = bound(socket.AF_INET, "127.0.0.2")
    other.settimeout(2)
    client.sendto(b"one", server.getsockname())
    other.sendto(b"two", server.getsockname())
    queries = mmsg.recv_burst(server.fileno(), 64)
    assert [(d, h) for d, h, _ in queries] == [(b"one", "127.0.0.1"), (b"two", "127.0.0.2")]
    assert mmsg.send_burst(server.fileno(), [(b"A" + d, p) for d, _, p in queries]) == 2
    assert client.recvfrom(64) == (b"Aone", server.getsockname())
    assert other.recvfrom(64) == (b"Atwo", server.getsockname())
    other.close()


def test_an_answer_the_kernel_refuses_costs_only_itself(mmsg, pair) -> None:  # noqa: ANN001
    server, client = pair
    client.sendto(b"q", server.getsockname())
    ((_, _, peer),) = mmsg.recv_burst(server.fileno(), 64)
    # broadcast without SO_BROADCAST: EACCES for that one datagram
    broadcast = socket.inet_aton("255.255.255.255")
    refused = peer[:4] + broadcast + peer[8:]
    replies = [(b"one", peer), (b"lost", refused), (b"two", peer)]
    assert mmsg.send_burst(server.fileno(), replies) == 2
    assert [client.recv(64), client.recv(64)] == [b"one", b"two"]


def test_ipv6_and_mapped_hosts_read_as_pythons_recvfrom_does(mmsg) -> None:  # noqa: ANN001
    server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", 0))
    server.setblocking(False)
    port = server.getsockname()[1]
    v6 = bound(socket.AF_INET6, "::1")
    v4 = bound(socket.AF_INET, "127.0.0.1")
    try:
        clients = ((v6, "::1"), (v4, "127.0.0.1"))
        expected = []
        for client, target in clients:  # first through Python's socket module
            client.sendto(b"q", (target, port))
            expected.append(server.recvfrom(64)[1][0])
        for client, target in clients:
            client.sendto(b"q", (target, port))
        queries = mmsg.recv_burst(server.fileno(), 64)
        assert [h for _, h, _ in queries] == expected == ["::1", "::ffff:127.0.0.1"]
        v6.settimeout(2)
        assert mmsg.send_burst(server.fileno(), [(b"A", queries[0][2])]) == 1
        assert v6.recv(64) == b"A"
    finally:
        for sock in (server, v6, v4):
            sock.close()


def test_an_oversized_datagram_arrives_cut_like_recvfrom(mmsg, pair) -> None:  # noqa: ANN001
    server, client = pair
    client.sendto(b"x" * 5000, server.getsockname())
    ((data, _, _),) = mmsg.recv_burst(server.fileno(), 64)
    assert data == b"x" * udp.MAX_QUERY_BYTES


def test_bad_calls_are_clear_errors(mmsg, pair) -> None:  # noqa: ANN001
    server, _ = pair
    for wrong in (0, mmsg.BURST + 1):
        with pytest.raises(ValueError, match="max must be"):
            mmsg.recv_burst(server.fileno(), wrong)
    with pytest.raises(TypeError, match="replies"):
        mmsg.send_burst(server.fileno(), [(b"answer",)])
    with pytest.raises(TypeError):
        mmsg.send_burst(server.fileno(), [("not bytes", b"")])
    with pytest.raises(ValueError, match="peer longer"):
        mmsg.send_burst(server.fileno(), [(b"answer", bytes(200))])
    closed = bound(socket.AF_INET, "127.0.0.1")
    fd = closed.detach()
    socket.close(fd)
    with pytest.raises(OSError):
        mmsg.recv_burst(fd, 64)
