"""The UDP front door: a burst of queries read in one wake-up, answered together."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import defer

from dns_filter import udp
from dns_filter.udp import READS_PER_WAKEUP, UdpReader
from tests.support.requirements import need_mmsg


@pytest.fixture(autouse=True, params=["recvmmsg", "recvfrom"])
def io_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both paths: the C burst module and Python's socket calls."""
    if request.param == "recvmmsg":
        need_mmsg()
    else:
        monkeypatch.setattr(udp, "_mmsg", None)
    return request.param


@pytest.fixture
def pair():  # noqa: ANN201
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    yield server, client
    server.close()
    client.close()


def answers(client: socket.socket, n: int) -> list[bytes]:
    return [client.recv(512) for _ in range(n)]


def test_every_query_of_a_burst_gets_its_own_answer_in_order(pair) -> None:  # noqa: ANN001
    server, client = pair
    errors: list[int] = []
    reader = UdpReader(server, lambda data, source, udp: b"A" + data, lambda: errors.append(1))
    sent = [i.to_bytes(2, "big") + b"query" for i in range(READS_PER_WAKEUP + 10)]
    for q in sent:
        client.sendto(q, server.getsockname())
    reader.doRead()  # one wake-up reads at most READS_PER_WAKEUP, then yields
    assert answers(client, READS_PER_WAKEUP) == [b"A" + q for q in sent[:READS_PER_WAKEUP]]
    reader.doRead()
    assert answers(client, 10) == [b"A" + q for q in sent[READS_PER_WAKEUP:]]
    assert errors == []


def test_a_failing_query_costs_only_its_own_answer(pair) -> None:  # noqa: ANN001
    server, client = pair
    errors: list[int] = []

    def handle(data: bytes, source: str, udp: bool) -> bytes | None:
        if data == b"boom":
            raise ValueError("bad packet")
        return None if data == b"drop" else b"A" + data

    reader = UdpReader(server, handle, lambda: errors.append(1))
    for q in (b"one", b"boom", b"drop", b"two"):
        client.sendto(q, server.getsockname())
    reader.doRead()
    assert answers(client, 2) == [b"Aone", b"Atwo"]
    assert errors == [1]


def test_a_deferred_answer_is_sent_when_it_fires(pair) -> None:  # noqa: ANN001
    server, client = pair
    later: defer.Deferred[bytes] = defer.Deferred()
    reader = UdpReader(server, lambda data, source, udp: later if data == b"slow" else b"now",
                       lambda: None)
    client.sendto(b"slow", server.getsockname())
    client.sendto(b"fast", server.getsockname())
    reader.doRead()
    assert answers(client, 1) == [b"now"]
    later.callback(b"upstream answer")
    assert answers(client, 1) == [b"upstream answer"]


class FlakySend:
    """The server socket, but the first answer's send fails (a full buffer, a gone client)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.failed = 0

    def recvfrom(self, n: int):  # noqa: ANN201
        return self.sock.recvfrom(n)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if not self.failed:
            self.failed += 1
            raise OSError(105, "No buffer space available")
        return self.sock.sendto(data, addr)


def test_a_failed_send_costs_only_that_answer(pair) -> None:  # noqa: ANN001
    server, client = pair
    flaky = FlakySend(server)
    reader = UdpReader(flaky, lambda data, source, udp: b"A" + data, lambda: None)  # type: ignore[arg-type]
    for q in (b"one", b"two", b"three"):
        client.sendto(q, server.getsockname())
    reader.doRead()
    assert flaky.failed == 1
    assert answers(client, 2) == [b"Atwo", b"Athree"]


@pytest.fixture
def sibling():  # noqa: ANN201
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def test_a_worker_with_nothing_to_do_serves_its_siblings_queue(pair, sibling) -> None:  # noqa: ANN001
    server, client = pair
    scheduled: list[object] = []
    reader = UdpReader(server, lambda data, source, udp: b"A" + data, lambda: None,
                       [sibling], scheduled.append)
    for q in (b"one", b"two", b"three"):
        client.sendto(q, sibling.getsockname())
    reader.doRead()
    # answered through the socket the query came in on: the client sees the address it asked
    got = [client.recvfrom(512) for _ in range(3)]
    assert got == [(b"A" + q, sibling.getsockname()) for q in (b"one", b"two", b"three")]
    # it took work, so it looks again before sleeping; a look that finds none stops
    assert len(scheduled) == 1
    scheduled.pop()()  # type: ignore[operator]
    assert scheduled == []


def test_own_queue_first_then_siblings_until_every_queue_is_empty(pair, sibling) -> None:  # noqa: ANN001
    server, client = pair
    scheduled: list[object] = []
    reader = UdpReader(server, lambda data, source, udp: b"A" + data, lambda: None,
                       [sibling], scheduled.append)
    own = [b"own%d" % i for i in range(READS_PER_WAKEUP - 2)]
    theirs = [b"sib%d" % i for i in range(5)]
    for q in own:
        client.sendto(q, server.getsockname())
    for q in theirs:
        client.sendto(q, sibling.getsockname())
    reader.doRead()  # the whole own queue, then 2 of the sibling's: one budget
    assert answers(client, READS_PER_WAKEUP) == [b"A" + q for q in own + theirs[:2]]
    assert len(scheduled) == 1
    scheduled.pop()()  # type: ignore[operator]
    assert answers(client, 3) == [b"A" + q for q in theirs[2:]]
    assert len(scheduled) == 1  # took some: one more look
    scheduled.pop()()  # type: ignore[operator]
    assert scheduled == []


def test_a_full_own_queue_leaves_the_siblings_alone(pair, sibling) -> None:  # noqa: ANN001
    server, client = pair
    scheduled: list[object] = []
    reader = UdpReader(server, lambda data, source, udp: b"A" + data, lambda: None,
                       [sibling], scheduled.append)
    for i in range(READS_PER_WAKEUP):
        client.sendto(b"own%d" % i, server.getsockname())
    client.sendto(b"sib", sibling.getsockname())
    reader.doRead()
    assert len(answers(client, READS_PER_WAKEUP)) == READS_PER_WAKEUP
    assert scheduled == []
    assert sibling.recvfrom(512)[0] == b"sib"  # still queued for its own worker


def test_a_deferred_answer_to_a_siblings_query_leaves_by_the_siblings_socket(
        pair, sibling) -> None:  # noqa: ANN001
    server, client = pair
    later: defer.Deferred[bytes] = defer.Deferred()
    reader = UdpReader(server, lambda data, source, udp: later, lambda: None,
                       [sibling], lambda f: None)
    client.sendto(b"slow", sibling.getsockname())
    reader.doRead()
    later.callback(b"upstream answer")
    assert client.recvfrom(512) == (b"upstream answer", sibling.getsockname())


def test_every_wake_up_tells_the_handover_first(pair) -> None:  # noqa: ANN001
    server, client = pair
    seen: list[int] = []
    reader = UdpReader(server, lambda data, source, udp: b"A" + data, lambda: None,
                       tick=lambda: seen.append(len(answered)))
    answered: list[bytes] = []
    client.sendto(b"one", server.getsockname())
    reader.doRead()
    answered += answers(client, 1)
    reader.doRead()  # an empty wake-up (the sweep) ticks too: an idle worker stays fresh
    assert seen == [0, 1]


def test_hosted_sockets_are_served_in_the_same_wake_up_and_wake_it(pair, sibling) -> None:  # noqa: ANN001
    import select

    server, client = pair
    reader = UdpReader(server, lambda data, source, udp: b"A" + data, lambda: None)
    own_fd = reader.fileno()
    reader.host([sibling])
    assert reader.fileno() != own_fd
    watcher = select.epoll()  # as the reactor would watch it
    watcher.register(reader.fileno(), select.EPOLLIN)
    assert watcher.poll(0) == []
    client.sendto(b"theirs", sibling.getsockname())
    assert watcher.poll(1)  # a packet on the hosted socket wakes us
    client.sendto(b"ours", server.getsockname())
    reader.doRead()
    got = sorted(client.recvfrom(512) for _ in range(2))
    assert got == sorted([(b"Aours", server.getsockname()), (b"Atheirs", sibling.getsockname())])
    assert watcher.poll(0) == []  # both drained
    reader.host(())
    assert reader.fileno() == own_fd
    watcher.close()


def test_a_reader_that_stops_closes_its_socket_but_not_the_hosted_ones(pair, sibling) -> None:  # noqa: ANN001
    from twisted.python import failure

    server, _ = pair
    reader = UdpReader(server, lambda data, source, udp: b"A", lambda: None)
    reader.host([sibling])
    reader.connectionLost(failure.Failure(ConnectionError("reactor stopping")))
    assert server.fileno() == -1
    assert sibling.fileno() != -1  # still open for its own worker
