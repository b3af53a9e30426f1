"""Workers on one CPU hand their UDP queue to the lowest-numbered one (dns_filter.handover)."""

from __future__ import annotations

import os

import pytest

from dns_filter.handover import (
    FRESH_NS,
    HEARTBEAT_NS,
    MAX_WORKERS,
    PARKED,
    SERVING,
    WANTS,
    Board,
    Handover,
)


class Worker:
    """One worker's Handover with a CPU the test moves it to and a log of what it was told."""

    def __init__(self, board: Board, index: int, clock: list[int], cpu: int):
        self.cpu = cpu
        self.events: list[str] = []
        self.handover = Handover(
            board,
            index,
            adopt=lambda k: self.events.append(f"adopt {k}"),
            release=lambda k: self.events.append(f"release {k}"),
            pause=lambda: self.events.append("pause"),
            resume=lambda: self.events.append("resume"),
            clock=lambda: clock[0],
            current_cpu=lambda: self.cpu,
        )

    def check(self) -> list[str]:
        self.events.clear()
        self.handover.check()
        return list(self.events)

    @property
    def state(self) -> int:
        return self.handover.state


@pytest.fixture
def clock() -> list[int]:
    return [10 * FRESH_NS]


def workers(clock: list[int], *cpus: int) -> list[Worker]:
    board = Board(len(cpus))
    return [Worker(board, i, clock, cpu) for i, cpu in enumerate(cpus)]


def test_a_worker_on_its_siblings_cpu_hands_over_only_once_the_sibling_reads_its_queue(
    clock: list[int],
) -> None:
    w0, w1 = workers(clock, 1, 1)
    assert w0.check() == []
    assert w1.check() == []  # asked, but still reading: nobody reads its queue yet
    assert (w1.state, w1.handover.target) == (WANTS, 0)
    assert w0.check() == ["adopt 1"]
    assert w1.check() == ["pause"]
    assert w1.state == PARKED and w1.handover.parked
    assert w0.handover.board.read(1).state == PARKED
    # stable: later checks change nothing
    clock[0] += HEARTBEAT_NS
    assert (w0.check(), w1.check()) == ([], [])


def test_workers_on_different_cpus_both_serve(clock: list[int]) -> None:
    w0, w1 = workers(clock, 0, 1)
    for _ in range(3):
        assert (w0.check(), w1.check()) == ([], [])
        clock[0] += HEARTBEAT_NS
    assert (w0.state, w1.state) == (SERVING, SERVING)


def park(w0: Worker, w1: Worker) -> None:
    w0.check()
    w1.check()
    w0.check()
    w1.check()
    assert w1.state == PARKED


def test_a_parked_worker_takes_its_queue_back_from_a_host_that_stopped(
    clock: list[int],
) -> None:
    w0, w1 = workers(clock, 1, 1)
    park(w0, w1)
    clock[0] += FRESH_NS - 1
    assert w1.check() == []  # not yet stale
    clock[0] += 1
    assert w1.check() == ["resume"]
    assert w1.state == SERVING
    assert w0.check() == ["release 1"]  # the host wakes again: it lets go
    assert w0.handover.adopted == frozenset()


def test_a_parked_worker_moved_to_another_cpu_serves_again(clock: list[int]) -> None:
    w0, w1 = workers(clock, 1, 1)
    park(w0, w1)
    w1.cpu = 0
    assert w1.check() == ["resume"]
    assert w0.check() == ["release 1"]
    # and it hands over again when the kernel puts it back
    w1.cpu = 1
    park(w0, w1)


def test_a_host_that_moves_away_gets_its_guest_back(clock: list[int]) -> None:
    w0, w1 = workers(clock, 1, 1)
    park(w0, w1)
    w0.cpu = 0
    w0.check()
    assert w1.check() == ["resume"]


def test_a_restarted_host_frees_its_parked_sibling_at_once(clock: list[int]) -> None:
    w0, w1 = workers(clock, 1, 1)
    park(w0, w1)
    w0.handover.board.reset(0)  # the supervisor, before forking the new worker 0
    assert w1.check() == ["resume"]


def test_a_host_that_lets_go_is_asked_again_and_the_guest_reads_meanwhile(
    clock: list[int],
) -> None:
    w0, w1 = workers(clock, 1, 1)
    park(w0, w1)
    board = w0.handover.board
    slot = board.read(0)
    board.write(0, slot._replace(adopted=0))  # e.g. a host restarted between two checks
    assert w1.check() == ["resume"]
    assert w1.state == WANTS


def test_a_host_never_hands_over_its_own_queue_and_guests_move_to_the_lowest(
    clock: list[int],
) -> None:
    w0, w1, w2 = workers(clock, 0, 1, 1)
    w0.check()
    park(w1, w2)
    w0.cpu = 1  # the kernel moves worker 0 onto the same CPU
    w0.check()
    assert w1.check() == []  # worker 1 hosts worker 2: it keeps serving (no chains)
    assert w1.state == SERVING
    assert w2.check() == ["resume"]  # worker 2 asks worker 0 and reads until it confirms
    assert (w2.state, w2.handover.target) == (WANTS, 0)
    # worker 1, a host no more, asks worker 0 in the same check
    assert w1.check() == ["release 2"]
    assert (w1.state, w1.handover.target) == (WANTS, 0)
    assert w0.check() == ["adopt 1", "adopt 2"]
    assert (w1.check(), w2.check()) == (["pause"], ["pause"])
    assert w0.handover.adopted == {1, 2}


def test_a_worker_that_hands_over_hosts_nobody(clock: list[int]) -> None:
    w0, w1, w2 = workers(clock, 1, 1, 1)
    w0.check()
    w1.check()  # wants worker 0
    board = w0.handover.board
    # worker 2 read worker 1's slot a moment earlier, when it still served
    board.write(2, board.read(2)._replace(state=WANTS, target=1, heartbeat_ns=clock[0]))
    assert w1.check() == []
    assert w1.handover.adopted == frozenset()


def test_tick_checks_at_most_once_per_heartbeat(clock: list[int]) -> None:
    (w0,) = workers(clock, 3)
    calls = []
    w0.handover.current_cpu = lambda: calls.append(1) or 3
    w0.handover.tick()
    w0.handover.tick()
    assert len(calls) == 1
    clock[0] += HEARTBEAT_NS
    w0.handover.tick()
    assert len(calls) == 2
    assert w0.handover.board.read(0).heartbeat_ns == clock[0]


def test_the_board_is_shared_with_forked_workers() -> None:
    board = Board(2)
    pid = os.fork()
    if pid == 0:  # the child writes its slot as a worker would
        board.write(1, board.read(1)._replace(cpu=7, state=PARKED, target=0, adopted=5))
        os._exit(0)
    os.waitpid(pid, 0)
    slot = board.read(1)
    assert (slot.cpu, slot.state, slot.target, slot.adopted) == (7, PARKED, 0, 5)
    assert board.read(0).cpu == -1  # a fresh slot is on no CPU


def test_the_real_cpu_is_one_this_process_may_run_on() -> None:
    handover = Handover(Board(1), 0, adopt=print, release=print, pause=print, resume=print)
    assert handover.current_cpu() in os.sched_getaffinity(0)


@pytest.mark.parametrize("workers", [0, MAX_WORKERS + 1])
def test_a_board_holds_one_to_max_workers(workers: int) -> None:
    with pytest.raises(ValueError, match="handover board"):
        Board(workers)
