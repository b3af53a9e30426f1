"""What the enforcer wants for each subscriber on the network and what it got."""

from tortoise import fields
from tortoise.models import Model


class EnforcementState(Model):
    """One row per (subscriber, target) of an open session: desired vs applied, retries.

    A target is where the wish is applied: "nas:<address>" (CoA, written by the
    box that owns that NAS), "shaper:<box>" (that box's local shaper) or "none"
    (nothing can enforce it: single-box deployments only). Each box writes and
    deletes only the rows of its own targets (migration 0014), so two boxes never
    rewrite each other's row.

    Times are epoch seconds (float) in both dialects: the enforcer does
    arithmetic on them (backoff) and writes them in batches with plain SQL.
    state: pending (to send) | applied | retrying (failed, next_retry_at set) |
    failed (final: e.g. the NAS no longer knows the session) | unenforced (no
    NAS row and no local shaper for this session).
    """

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    username = fields.CharField(max_length=64)
    target = fields.CharField(max_length=64)  # "nas:<ip>" | "shaper:<box>" | "none"
    acct_session_id = fields.CharField(max_length=64, default="")
    address = fields.CharField(max_length=64, default="")  # framed IP the shaper keys on
    desired_action = fields.CharField(max_length=16)  # rate | disconnect
    desired_down_kbps = fields.IntField()
    desired_up_kbps = fields.IntField()
    reason = fields.CharField(max_length=32)  # plan | fup:daily:1 | expired | disabled ...
    state = fields.CharField(max_length=16, default="pending")
    applied_action = fields.CharField(max_length=16, null=True)
    applied_down_kbps = fields.IntField(null=True)
    applied_up_kbps = fields.IntField(null=True)
    applied_at = fields.FloatField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(default="")
    next_retry_at = fields.FloatField(null=True)
    updated_at = fields.FloatField()

    class Meta:
        table = "enforcement_state"
        unique_together = (("username", "target"),)
