"""Usage accounting: per-day totals, the ingest's per-session memory, live rates."""

from tortoise import fields
from tortoise.models import Model


class UsageDaily(Model):
    """Bytes one subscriber moved on one local day (operator time zone)."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    username = fields.CharField(max_length=64)
    day = fields.DateField()
    bytes_in: fields.Field[int] = fields.BigIntField(default=0)  # subscriber upload
    bytes_out: fields.Field[int] = fields.BigIntField(default=0)  # subscriber download

    class Meta:
        table = "usage_daily"
        unique_together = (("username", "day"),)


class UsageSession(Model):
    """The counters the ingest last saw for one radacct session (and the pair before them).

    Times are epoch seconds in both dialects: the ingest does arithmetic on them.
    """

    acctuniqueid = fields.CharField(max_length=32, primary_key=True)
    username = fields.CharField(max_length=64)
    bytes_in: fields.Field[int] = fields.BigIntField()
    bytes_out: fields.Field[int] = fields.BigIntField()
    seen_at: fields.Field[int] = fields.BigIntField()
    prev_bytes_in: fields.Field[int | None] = fields.BigIntField(null=True)
    prev_bytes_out: fields.Field[int | None] = fields.BigIntField(null=True)
    prev_seen_at: fields.Field[int | None] = fields.BigIntField(null=True)
    stopped_at: fields.Field[int | None] = fields.BigIntField(null=True)

    class Meta:
        table = "usage_sessions"


class UsageIngest(Model):
    """One row: where the ingest got to. Updated first in each pass (serialises passes)."""

    id = fields.IntField(primary_key=True)
    # epoch: rows changed before this were read
    watermark: fields.Field[int] = fields.BigIntField(default=0)
    last_run_at: fields.Field[int] = fields.BigIntField(default=0)
    # radacct_changes followed gap-safely (migration 0013): highest id read, open gaps
    change_cursor: fields.Field[int] = fields.BigIntField(default=0)
    change_gaps: fields.Field[str] = fields.TextField(default="{}")
    # epoch of the last periodic pass's stale scan and housekeeping (migration 0021)
    full_run_at: fields.Field[int] = fields.BigIntField(default=0)

    class Meta:
        table = "usage_ingest"


class LiveRate(Model):
    """Per-subscriber rates the enforcer samples from shaper class counters."""

    username = fields.CharField(max_length=64, primary_key=True)
    down_bps: fields.Field[int] = fields.BigIntField()
    up_bps: fields.Field[int] = fields.BigIntField()
    sampled_at = fields.DatetimeField()

    class Meta:
        table = "live_rates"
