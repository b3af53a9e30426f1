"""Process wiring: sockets, worker processes, periodic reloads, metrics.

`run(settings)` blocks. With one worker it serves in this process; with
several it forks workers that each bind the same UDP and TCP port with
SO_REUSEPORT (the kernel spreads clients across them) and this process
supervises them (restarting a worker that dies) and serves /metrics with
the workers' counters summed.
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import resource
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dns_filter.handover import MAX_WORKERS, Board, Handover
from dns_filter.settings import DnsSettings
from dns_filter.tcp_guard import connection_cap

if TYPE_CHECKING:
    from dns_filter.metrics import Metrics
    from dns_filter.udp import UdpReader

log = logging.getLogger("ispedge.dns")
TCP_MAX_PENDING = 64  # pipelined queries one connection may have outstanding
TCP_CLOSE_GRACE_S = 2.0  # a graceful close still unfinished after this is aborted
TCP_SWEEP_S = 0.05  # how often TCP deadlines are checked (their precision)
TCP_CLOSES_PER_TURN = 32  # connections closed at their deadline per reactor turn
TCP_ACCEPTS_PER_TURN = 16  # connections accepted per reactor turn


def raise_nofile_limit() -> int:
    """Raise this process's soft descriptor limit to its hard one (systemd and
    most shells start services at 1024); return the soft limit now in force.
    Forked workers inherit it. Twisted's reactor is epoll, so no select() limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as e:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, hard, e)
    return nofile_limit()


def nofile_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def bind_socket(address: str, port: int, kind: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if kind == socket.SOCK_DGRAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


def udp_sockets(settings: DnsSettings, count: int) -> list[socket.socket]:
    """One UDP socket per worker, all in one SO_REUSEPORT group (bound before forking)."""
    return [
        bind_socket(settings.listen_address, settings.listen_port, socket.SOCK_DGRAM)
        for _ in range(count)
    ]


def _build_worker(  # noqa: ANN202 - returns reactor-bound objects
    settings: DnsSettings,
    worker_index: int,
    udp_sockets: list[socket.socket],
    board: Board | None = None,
):
    from twisted.internet import reactor, task
    from twisted.internet.base import DelayedCall
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IAddress
    from twisted.internet.protocol import Factory, Protocol

    from blocklists.store import DomainStore
    from blocklists.update import current_generation
    from dns_filter import dburl
    from dns_filter.block_log import BlockLog, BlockLogDatabase
    from dns_filter.blocking import BlockDecider, BlockResponder
    from dns_filter.cache import AnswerCache
    from dns_filter.metrics import Metrics
    from dns_filter.policy import ClientPolicies, PolicyTable
    from dns_filter.policy_sync import PolicyFollower
    from dns_filter.ratelimit import RateLimiter
    from dns_filter.resolver import FilterChain
    from dns_filter.tcp_guard import (
        TcpConnection,
        TcpConnections,
        TcpLimits,
        connection_cap,
    )
    from dns_filter.udp import SIBLING_SWEEP_S, UdpReader
    from dns_filter.upstream import UpstreamPool

    metrics = Metrics()
    table = PolicyTable()
    # Every connection of the resolver (policy reader, block log, heartbeat) carries
    # the box's name as PostgreSQL application_name (pg_stat_activity says whose it is).
    named_url = dburl.with_application_name(settings.database_url, settings.box)
    follower = PolicyFollower(
        named_url,
        table,
        settings.state_dir / "policy-snapshot.json",
        metrics,
        settings.poll_interval_s,
        settings.full_reload_s,
        nas=settings.served_nas(),
        listen_poll_s=settings.listen_poll_s,
    )
    follower.load_initial()

    store_state: dict[str, object] = {"path": None, "store": None}

    def open_store() -> DomainStore | None:
        path = current_generation(settings.blocklist_dir)
        if path is None or path == store_state["path"]:
            return None
        try:
            started = time.perf_counter()
            store = DomainStore(path)
        except (OSError, ValueError) as e:
            log.error("blocklists: cannot open %s: %s", path, e)
            return None
        store_state["path"] = path
        store_state["store"] = store
        metrics.gauges["blocklist_domains"] = len(store)
        log.info(
            "blocklists: generation %s, %d domains, opened in %.2f ms",
            path.name,
            len(store),
            (time.perf_counter() - started) * 1000,
        )
        return store

    garden = (settings.expired_allow
              if settings.expired_page_ipv4 or settings.expired_page_ipv6 else None)
    decider = BlockDecider(open_store(), settings.implied_categories, garden)

    def check_blocklists() -> None:
        old = decider.store
        store = open_store()
        if store is not None:
            decider.set_store(store)  # an atomic swap between two queries
            if isinstance(old, DomainStore):
                old.close()  # nothing else holds it: the reactor is single-threaded

    if settings.box and settings.database_url:
        from dns_filter.heartbeat import Heartbeat

        Heartbeat(named_url, settings.box, settings.heartbeat_s,
                  cursor=lambda: follower.cursor.high if follower.cursor else None).start()

    block_log = None
    if settings.block_log and settings.database_url:
        block_log = BlockLog(
            BlockLogDatabase(named_url),
            table,
            metrics,
            settings.block_log_interval_s,
            settings.block_log_days,
            settings.block_log_max_recent,
        )

    chain = FilterChain(
        ClientPolicies(table, settings.served_networks, settings.default_categories),
        RateLimiter(settings.rate_limit_qps, settings.rate_limit_burst),
        decider,
        BlockResponder(
            settings.block_mode,
            settings.blocked_page_ipv4,
            settings.blocked_page_ipv6,
            settings.blocked_ttl,
            settings.expired_page_ipv4,
            settings.expired_page_ipv6,
        ),
        AnswerCache(
            settings.cache_min_ttl,
            settings.cache_max_ttl,
            settings.cache_stale_s,
            settings.cache_max_entries,
        ),
        UpstreamPool(settings.upstreams, settings.upstream_timeout_s, reactor, metrics),
        metrics,
        block_log,
    )

    limits = TcpLimits(
        connection_cap(settings.tcp_max_connections, nofile_limit()),
        settings.tcp_max_connections_per_source,
        settings.tcp_idle_timeout_s,
        settings.tcp_query_timeout_s,
        settings.tcp_max_lifetime_s,
    )
    if limits.max_connections < settings.tcp_max_connections:
        log.warning(
            "tcp_max_connections %d lowered to %d to fit the descriptor limit %d",
            settings.tcp_max_connections, limits.max_connections, nofile_limit(),
        )
    connections = TcpConnections(limits)
    metrics.gauges["tcp_connections_max"] = limits.max_connections
    metrics.gauges["tcp_connections_open"] = 0

    class TcpDns(Protocol):
        """RFC 7766: many queries per connection, answered as each is ready (pipelining),
        under the caps and deadlines of dns_filter.tcp_guard."""

        def __init__(self, conn: TcpConnection) -> None:
            self.conn = conn
            self.buffer = b""
            self.timer: DelayedCall | None = None
            self.closing = False

        @property
        def tcp(self) -> Any:  # noqa: ANN401 - Twisted types it Optional[ITransport]
            """The connected ITCPTransport (write, abortConnection, producers)."""
            return self.transport

        def connectionMade(self) -> None:  # noqa: N802
            # Back-pressure: while answers pile up unread in the transport (past
            # Twisted's 64 KiB), stop reading queries from this client.
            self.tcp.registerProducer(self, True)

        def pauseProducing(self) -> None:  # noqa: N802
            self.tcp.pauseProducing()

        def resumeProducing(self) -> None:  # noqa: N802
            if not self.closing:
                self.tcp.resumeProducing()

        def stopProducing(self) -> None:  # noqa: N802
            pass

        def dataReceived(self, data: bytes) -> None:  # noqa: N802
            if self.closing:
                return
            conn = self.conn
            started_before = conn.message_started_at
            self.buffer += data
            completed = False
            while len(self.buffer) >= 2:
                (length,) = struct.unpack_from("!H", self.buffer)
                if len(self.buffer) < 2 + length:
                    break
                message, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
                if conn.pending >= TCP_MAX_PENDING:
                    self._close(abort=True)
                    return
                completed = True
                self._query(message)
                if self.closing:
                    return
            now = time.monotonic()
            if completed:
                connections.touch(conn, now)
                # what is left is the start of the next message, begun in this chunk
                conn.message_started_at = now if self.buffer else None
            elif conn.message_started_at is None and self.buffer:
                conn.message_started_at = now
            # One more byte of the same message changes no deadline: no reset per byte.
            if completed or conn.message_started_at != started_before:
                connections.schedule(conn)

        def _query(self, message: bytes) -> None:
            try:
                result = chain.handle(message, self.conn.source, False)
            except Exception:  # noqa: BLE001
                log.exception("TCP query from %s failed", self.conn.source)
                self._close()
                return
            if result is None:
                self._close()
            elif type(result) is bytes:
                self._send(result)
            else:
                self.conn.pending += 1
                deferred = cast("Deferred[bytes]", result)
                deferred.addCallback(self._deferred_answer)
                deferred.addErrback(lambda f: self._close())

        def _deferred_answer(self, response: bytes) -> None:
            self.conn.pending -= 1
            if self.closing:
                return
            self._send(response)
            connections.touch(self.conn, time.monotonic())  # the idle deadline starts now

        def _send(self, response: bytes) -> None:
            self.tcp.write(struct.pack("!H", len(response)) + response)

        def timed_out(self, reason: str) -> None:
            metrics.tcp["timeout_" + reason] += 1
            # a client that sends nothing more gets a FIN; one stuck mid-query, an RST
            self._close(abort=reason == "query")

        def _grace_over(self) -> None:
            self.tcp.abortConnection()

        def evict(self) -> None:
            metrics.tcp["evicted"] += 1
            self._close(abort=True)  # frees the descriptor on the next reactor turn

        def _close(self, abort: bool = False) -> None:
            connections.remove(self.conn)
            if abort:
                self.closing = True
                self.tcp.abortConnection()
                return
            if not self.closing:
                self.closing = True
                # with a producer still registered and paused, Twisted would resume
                # it instead of closing once the answers are written
                self.tcp.unregisterProducer()
                self.tcp.loseConnection()
                # a client that never reads would hold a graceful close open forever
                self.timer = reactor.callLater(TCP_CLOSE_GRACE_S, self._grace_over)

        def connectionLost(self, reason: object = None) -> None:  # noqa: N802
            self.closing = True
            connections.remove(self.conn)
            if self.timer is not None and self.timer.active():
                self.timer.cancel()
            self.timer = None
            metrics.gauges["tcp_connections_open"] = len(connections)

    class TcpDnsFactory(Factory):
        def buildProtocol(self, addr: IAddress) -> TcpDns | None:  # noqa: N802
            source = getattr(addr, "host", "")
            conn, victim = connections.admit(source, time.monotonic())
            if conn is None:
                metrics.tcp["refused_per_source"] += 1
                return None  # Twisted closes the socket at once
            if victim is not None and isinstance(victim.owner, TcpDns):
                victim.owner.evict()
            protocol = TcpDns(conn)
            conn.owner = protocol
            metrics.gauges["tcp_connections_open"] = len(connections)
            return protocol

    more_to_sweep = [False]

    def sweep_tcp() -> None:
        """Close connections past their deadline, a bounded batch per reactor turn:
        connections opened together time out together, and UDP is served between
        two batches."""
        more_to_sweep[0] = False
        for conn, reason in connections.expired(time.monotonic(), TCP_CLOSES_PER_TURN):
            if isinstance(conn.owner, TcpDns):
                conn.owner.timed_out(reason)
        due = connections.next_due()
        if due is not None and due <= time.monotonic() and not more_to_sweep[0]:
            more_to_sweep[0] = True
            reactor.callLater(0, sweep_tcp)  # after the reactor has polled its sockets

    udp = udp_sockets[worker_index]
    siblings = [sock for i, sock in enumerate(udp_sockets) if i != worker_index]
    tcp = bind_socket(settings.listen_address, settings.listen_port, socket.SOCK_STREAM)

    def count_error() -> None:
        metrics.queries["error"] += 1

    reader = UdpReader(udp, chain.handle, count_error, siblings, lambda f: reactor.callLater(0, f))
    handover = (
        None if board is None else _handover(board, worker_index, reader, udp_sockets, metrics)
    )
    reactor.addReader(reader)
    if siblings:

        def sweep() -> None:
            if handover is not None and handover.parked:
                handover.check()
            else:
                reader.doRead()

        task.LoopingCall(sweep).start(SIBLING_SWEEP_S, now=False)
    port = reactor.adoptStreamPort(tcp.fileno(), tcp.family, TcpDnsFactory())
    accept = port.doRead

    def accept_a_batch() -> None:
        # Twisted grows its accepts per turn without bound while the backlog stays
        # full (+20 each time); each accept at the cap also evicts. Keep a turn short.
        port.numberAccepts = min(port.numberAccepts, TCP_ACCEPTS_PER_TURN)
        accept()

    port.doRead = accept_a_batch
    task.LoopingCall(sweep_tcp).start(TCP_SWEEP_S, now=False)
    tcp.close()  # adoptStreamPort holds its own duplicate of the descriptor

    follower.start()
    if block_log is not None:
        block_log.start()
    task.LoopingCall(check_blocklists).start(settings.blocklist_check_s, now=False)
    task.LoopingCall(chain.limiter.sweep).start(60, now=False)

    def refresh_gauges() -> None:
        metrics.gauges["policy_age_seconds"] = round(follower.age_s(), 3)
        metrics.gauges["policy_table_size"] = len(table)
        metrics.gauges["cache_entries"] = len(chain.cache)

    task.LoopingCall(refresh_gauges).start(1.0)
    return reactor, metrics, refresh_gauges, follower


def _handover(
    board: Board,
    index: int,
    reader: UdpReader,
    udp_sockets: list[socket.socket],
    metrics: Metrics,
) -> Handover:
    """Wire dns_filter.handover to this worker's reactor: the reader serves hosted sockets too."""
    from twisted.internet import reactor

    hosted: set[int] = set()
    reading = [True]

    def adopt(k: int) -> None:
        hosted.add(k)
        hosting_changed()

    def release(k: int) -> None:
        hosted.discard(k)
        hosting_changed()

    def hosting_changed() -> None:
        if reading[0]:
            reactor.removeReader(reader)  # under its old descriptor
        reader.host([udp_sockets[k] for k in sorted(hosted)])
        # a hosted socket is served on every wake-up: no need to steal from it too
        reader.siblings = tuple(
            sock for i, sock in enumerate(udp_sockets) if i != index and i not in hosted
        )
        if reading[0]:
            reactor.addReader(reader)
        metrics.gauges["udp_queues_hosted"] = len(hosted)

    def pause() -> None:
        reading[0] = False
        reactor.removeReader(reader)

    def resume() -> None:
        reading[0] = True
        reactor.addReader(reader)

    handover = Handover(
        board,
        index,
        adopt=adopt,
        release=release,
        pause=pause,
        resume=resume,
    )
    reader.tick = handover.tick
    metrics.gauges["udp_queues_hosted"] = 0
    return handover


def _metrics_files(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "metrics").glob("worker-*.json"))


def _serve_metrics_http(settings: DnsSettings, snapshots) -> ThreadingHTTPServer | None:  # noqa: ANN001
    """A tiny /metrics server on a thread (stdlib: works in the supervisor and in a worker)."""
    if not settings.metrics_port:
        return None
    from dns_filter.metrics import render

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render(snapshots()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((settings.metrics_address, settings.metrics_port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def set_cpu_scheduling(policy: str, slice_ms: float = 0) -> None:
    """Apply DnsSettings.cpu_scheduling and cpu_slice_ms to this process;
    on failure, say so and go on.

    Measured (bench/dns_bench.py, two workers sharing one core): with "normal",
    each packet for the idle worker preempted the busy one (~4,700 switches/s,
    +9% CPU per cached and +15-25% per blocked answer against one worker);
    "batch" cut that 8x. The rest were turns at each 4 ms tick (the slice)
    and at each time one worker's queue ran dry: a 20 ms slice and workers
    that serve each other's queues (dns_filter.udp) bring two workers to
    ~100-150 switches/s, as many as one worker sleeping and waking alone.
    An idle CPU still runs a woken worker at once. One worker has no sibling:
    DnsSettings.scheduling ("auto") keeps it "normal", where a woken worker
    preempts the box's other daemons instead of waiting for the tick.
    """
    from dns_filter import cpuslice

    wanted = os.SCHED_BATCH if policy == "batch" else os.SCHED_OTHER
    try:
        if os.sched_getscheduler(0) != wanted:
            os.sched_setscheduler(0, wanted, os.sched_param(0))
    except OSError as e:
        log.warning("cpu_scheduling %r not applied (%s); using the default policy", policy, e)
        return
    if not slice_ms:
        return
    try:
        got = cpuslice.set_slice(wanted, slice_ms)
    except OSError as e:
        log.warning("cpu_slice_ms %s not applied (%s); the kernel's slice is used", slice_ms, e)
        return
    if got != int(slice_ms * 1e6):
        log.info("cpu_slice_ms %s: this kernel has no custom slices (Linux >= 6.12); "
                 "it reports %.2f ms", slice_ms, got / 1e6)


def _run_worker(
    settings: DnsSettings,
    worker_index: int,
    supervised: bool,
    udp_sockets: list[socket.socket],
    board: Board | None = None,
) -> None:
    from twisted.internet import task

    set_cpu_scheduling(*settings.scheduling())
    reactor, metrics, refresh_gauges, _follower = _build_worker(
        settings, worker_index, udp_sockets, board
    )
    if supervised:
        path = settings.state_dir / "metrics" / f"worker-{worker_index}.json"

        def dump() -> None:
            refresh_gauges()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(metrics.snapshot()))
            os.replace(tmp, path)

        task.LoopingCall(dump).start(1.0)
    else:

        def live() -> list[dict[str, object]]:
            return [metrics.snapshot()]

        _serve_metrics_http(settings, live)
    # Start-up objects never die: move them out of the collector's sight, and
    # collect less often (the hot path allocates only short-lived bytes).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    # The policy thread (deltas parsed, reads converted) holds the GIL for up to the
    # switch interval before the answer thread gets it back: 5 ms by default, the
    # whole answer budget under policy churn (issue 17). 0.5 ms costs nothing
    # measurable when the thread is idle.
    sys.setswitchinterval(0.0005)
    log.info(
        "dns_filter worker %d serving on %s port %d",
        worker_index,
        settings.listen_address,
        settings.listen_port,
    )
    print(f"READY dns_filter worker {worker_index} port {settings.listen_port} pid {os.getpid()}",
          flush=True)
    reactor.run()


def _ensure_blocklists(settings: DnsSettings) -> None:
    from blocklists.settings import BlocklistSettings
    from blocklists.update import current_generation, update

    if current_generation(settings.blocklist_dir) is None:
        log.info(
            "blocklists: no store in %s yet; building the built-in lists", settings.blocklist_dir
        )
        try:
            update(BlocklistSettings(blocklist_dir=settings.blocklist_dir))
        except OSError as e:
            # Read-only here (the updater owns the directory): serve unfiltered
            # until a generation appears; the watcher picks it up within a second.
            log.error(
                "blocklists: cannot build in %s (%s); nothing is blocked until "
                "`ispedge blocklists update` publishes a store",
                settings.blocklist_dir,
                e,
            )


def run(settings: DnsSettings) -> None:
    """Serve DNS until SIGTERM/SIGINT. Blocks."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    nofile = raise_nofile_limit()
    log.info("descriptor limit %d; TCP connections capped at %d per worker",
             nofile, connection_cap(settings.tcp_max_connections, nofile))
    _ensure_blocklists(settings)
    workers = settings.worker_count()
    if workers == 1:
        _run_worker(settings, 0, False, udp_sockets(settings, 1))
        return
    _supervise(settings, workers)


def _supervise(settings: DnsSettings, workers: int) -> None:
    metrics_dir = settings.state_dir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for old in _metrics_files(settings.state_dir):
        old.unlink()
    children: dict[int, int] = {}  # pid -> worker index
    # The UDP sockets outlive the workers: a worker that dies leaves its queue
    # to its siblings (they read it while theirs is empty) and its restart
    # takes the same socket, so the kernel never re-spreads clients meanwhile.
    sockets = udp_sockets(settings, workers)
    # Workers that the kernel puts on one CPU hand their queues to one of them.
    board = Board(workers) if settings.udp_handover and workers <= MAX_WORKERS else None
    stopping = False

    def spawn(index: int) -> None:
        if board is not None:
            board.reset(index)  # a sibling parked on the dead worker takes its queue back
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                _run_worker(settings, index, True, sockets, board)
                os._exit(0)
            except BaseException:  # noqa: BLE001
                log.exception("worker %d crashed", index)
                os._exit(1)
        children[pid] = index

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def snapshots() -> list[dict[str, object]]:
        out = []
        for path in _metrics_files(settings.state_dir):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    for index in range(workers):
        spawn(index)
    # Threads only after the first fork; a restart forks with this thread
    # running, which is safe because it takes no lock the workers need.
    _serve_metrics_http(settings, snapshots)
    while children:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno == errno.ECHILD:
                break
            raise
        index = children.pop(pid, None)
        if index is not None and not stopping:
            log.error("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
            time.sleep(0.5)
            spawn(index)
    sys.stdout.flush()
