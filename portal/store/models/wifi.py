"""WiFi management through a TR-069 ACS: ACS servers and the tasks sent to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from portal.store.models.business import Subscriber


class AcsServer(Model):
    """An ACS northbound API a reseller's routers are managed by (resellers.acs_id)."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=16, default="genieacs")
    url = fields.CharField(max_length=500)
    username = fields.CharField(max_length=128, default="")
    # Needed in clear to call the ACS; never shown by the portal or the CLI.
    password = fields.CharField(max_length=256, default="")
    # How the subscriber's router is found: "tag" (device tagged with the PPPoE
    # username) or "username" (the PPPoE username the router reports).
    match = fields.CharField(max_length=16, default="tag")
    timeout_ms = fields.IntField(default=10000)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "acs_servers"


class WifiTask(Model):
    """One change or reboot a subscriber asked for; also the rate limit's memory.

    Never holds a passphrase: `detail` says only which fields changed.
    """

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="wifi_tasks", on_delete=fields.CASCADE
    )
    subscriber_id: int
    device_id = fields.CharField(max_length=256, default="")
    acs_task_id = fields.CharField(max_length=64, null=True)
    action = fields.CharField(max_length=16)  # "wifi" | "reboot"
    band = fields.CharField(max_length=8, null=True)  # "2.4" | "5"
    detail = fields.CharField(max_length=500, default="")
    # sending -> pending (offline: pending + offline) -> done | faulted; failed if never queued
    status = fields.CharField(max_length=16, default="sending")
    offline = fields.BooleanField(default=False)
    message = fields.CharField(max_length=500, default="")  # English (old clients)
    # The message said in any language (portal.core.wifi.messages); '' on old rows
    message_code = fields.CharField(max_length=32, default="")
    message_params = fields.TextField(default="{}")  # JSON object
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "wifi_tasks"
        indexes = (("subscriber_id", "created_at"),)
