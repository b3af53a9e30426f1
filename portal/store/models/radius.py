"""FreeRADIUS's own tables, with its exact table and column names.

Stock rlm_sql queries run against these; we only add columns FreeRADIUS ignores
(nas.profile, nas.coa_port). radacct is read with plain SQL (see portal.store.radacct)
because FreeRADIUS writes its times as epoch integers on SQLite.
"""

from tortoise import fields
from tortoise.models import Model


class _AttributeRow(Model):
    id = fields.IntField(primary_key=True)
    attribute = fields.CharField(max_length=64, default="")
    op = fields.CharField(max_length=2, default="==")
    value = fields.CharField(max_length=253, default="")

    class Meta:
        abstract = True


class RadCheck(_AttributeRow):
    username = fields.CharField(max_length=64, default="", db_index=True)

    class Meta:
        table = "radcheck"


class RadReply(_AttributeRow):
    username = fields.CharField(max_length=64, default="", db_index=True)

    class Meta:
        table = "radreply"


class RadGroupCheck(_AttributeRow):
    groupname = fields.CharField(max_length=64, default="", db_index=True)

    class Meta:
        table = "radgroupcheck"


class RadGroupReply(_AttributeRow):
    groupname = fields.CharField(max_length=64, default="", db_index=True)

    class Meta:
        table = "radgroupreply"


class RadUserGroup(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, default="", db_index=True)
    groupname = fields.CharField(max_length=64, default="")
    priority = fields.IntField(default=1)

    class Meta:
        table = "radusergroup"


class Nas(Model):
    id = fields.IntField(primary_key=True)
    nasname = fields.CharField(max_length=128)
    shortname = fields.CharField(max_length=32, null=True)
    type = fields.CharField(max_length=30, default="other", null=True)
    ports = fields.IntField(null=True)
    secret = fields.CharField(max_length=60, default="secret")
    server = fields.CharField(max_length=64, null=True)
    community = fields.CharField(max_length=50, null=True)
    description = fields.CharField(max_length=200, default="RADIUS Client", null=True)
    # ispedge additions: which coa vendor profile and port reach this NAS.
    profile = fields.CharField(max_length=32, default="mikrotik")
    coa_port = fields.IntField(default=3799)
    # The edge box whose enforcer sends CoA for this NAS's sessions and closes its
    # stale ones (NULL: none named; portal/enforcer/README.md says who owns it then).
    box = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "nas"
