"""The gap rule of dns_filter.gapcursor: plain values, no database."""

from __future__ import annotations

from dns_filter.gapcursor import (
    MAX_NEW_GAPS,
    Gap,
    GapCursor,
    Snapshot,
    read_params,
    read_sql,
)

S = Snapshot  # (xmin, xmax)


def test_in_order_ids_move_the_cursor_and_leave_no_gaps():
    c = GapCursor()
    assert c.advance([1, 2, 3], S(100, 100), 0.0) == [1, 2, 3]
    assert (c.high, c.open_gaps()) == (3, [])
    assert c.advance([], S(100, 100), 1.0) == []
    assert c.high == 3


def test_a_missing_id_below_a_later_one_is_an_open_gap_until_it_is_read():
    c = GapCursor(high=10)
    # id 11 is held by an open transaction (xid 50, so xmin <= 50 < xmax 60); 12 committed
    assert c.advance([12], S(50, 60), 0.0) == [12]
    assert c.high == 12 and c.open_gaps() == [11]
    # polls while 11 is still open: xmin stays at 50, the gap stays, 12 is not repeated
    for t in (1.0, 5.0, 30.0):
        assert c.advance([], S(50, 61), t) == []
        assert c.open_gaps() == [11]
    # 11 commits: the next read (id > 12 OR id = ANY([11])) returns it, once
    assert c.advance([11, 13], S(62, 62), 31.0) == [11, 13]
    assert c.open_gaps() == [] and c.high == 13
    assert c.advance([], S(62, 62), 32.0) == []


def test_an_aborted_gap_is_dropped_once_xmin_passes_and_the_grace_ran_out():
    c = GapCursor(high=0, grace_s=2.0)
    c.advance([2], S(50, 60), 0.0)
    assert c.open_gaps() == [1]
    c.advance([], S(59, 61), 5.0)  # an xid below 60 still runs: might hold id 1
    assert c.open_gaps() == [1]
    c.advance([], S(60, 61), 1.0)  # every xid below 60 ended, but within the grace
    assert c.open_gaps() == [1]
    c.advance([], S(60, 61), 2.5)
    assert c.open_gaps() == []


def test_an_idle_database_still_drops_aborted_gaps():
    # No transaction running: xmin == xmax, nothing could hold the id.
    c = GapCursor(high=0, grace_s=0.0)
    c.advance([3], S(70, 70), 0.0)
    assert c.open_gaps() == [1, 2]
    c.advance([], S(70, 70), 0.1)
    assert c.open_gaps() == []


def test_sqlite_has_no_gaps_commit_order_is_id_order():
    c = GapCursor()
    assert c.advance([1, 3], None, 0.0) == [1, 3]
    assert c.open_gaps() == []  # id 2 was rolled back: with one writer it can never appear
    assert c.high == 3


def test_a_full_batch_examines_only_up_to_its_last_id():
    c = GapCursor(high=0, grace_s=0.0)
    c.advance([2, 5], S(10, 20), 0.0)
    assert c.open_gaps() == [1, 3, 4]
    # a batch of 2 filled by gap 1 and 3: gap 4 was not examined, so it is not dropped
    assert c.advance([1, 3], S(30, 30), 1.0, limit=2) == [1, 3]
    assert c.open_gaps() == [4] and c.high == 5
    c.advance([], S(30, 30), 2.0, limit=2)
    assert c.open_gaps() == []


def test_a_backlog_is_read_in_bounded_batches_without_loss():
    committed = list(range(1, 26))
    c = GapCursor()
    seen: list[int] = []
    while True:
        ids = [i for i in committed if i > c.high or i in c.gaps][:10]
        got = c.advance(ids, S(100, 100), 0.0, limit=10)
        seen += got
        if not got:
            break
    assert seen == committed


def test_a_jumping_sequence_opens_a_bounded_number_of_gaps():
    c = GapCursor(high=1)
    c.advance([10_000_000], S(5, 6), 0.0)
    assert len(c.gaps) == MAX_NEW_GAPS and max(c.gaps) == 9_999_999


def test_starting_cursor_keeps_the_missing_ids_above_the_floor_open():
    c = GapCursor.starting_at(90, [91, 92, 94, 95], S(40, 50), 0.0)
    assert c.high == 95 and c.open_gaps() == [93]
    empty = GapCursor.starting_at(-5, [], None, 0.0)
    assert (empty.high, empty.open_gaps()) == (0, [])


def test_read_sql_names_the_gaps_only_when_there_are_some():
    c = GapCursor(high=7)
    assert read_params(c, True, 100) == [7, 100]
    assert "ANY" not in read_sql("change_journal", "id", "kind", True, False)
    c.gaps[5] = Gap(1, 0.0)
    assert read_params(c, True, 100) == [7, [5], 100]
    assert "ANY" in read_sql("change_journal", "id", "kind", True, True)
    assert "pg_" not in read_sql("change_journal", "id", "kind", False, False)
