-- Gap-safe followers (issue 16). SQLite has no NOTIFY: followers poll. Writers
-- are serialized (BEGIN IMMEDIATE), so ids commit in id order: no gaps.

-- Accounting change capture: FreeRADIUS updates a radacct row in place (at
-- second granularity), so "acctupdatetime > last seen" misses rows. Every
-- insert and update of radacct appends the row id here, in the writer's own
-- transaction (FreeRADIUS's queries are unchanged); the usage ingest and the
-- enforcer follow it by id.
CREATE TABLE "radacct_changes" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "radacctid" BIGINT NOT NULL,
    "changed_at" BIGINT NOT NULL
) /* One row per insert or update of radacct (trigger); followed by id. */;
CREATE TRIGGER radacct_change_insert AFTER INSERT ON radacct BEGIN
    INSERT INTO radacct_changes (radacctid, changed_at)
        VALUES (NEW.radacctid, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER radacct_change_update AFTER UPDATE ON radacct BEGIN
    INSERT INTO radacct_changes (radacctid, changed_at)
        VALUES (NEW.radacctid, CAST(strftime('%s', 'now') AS INTEGER));
END;
-- Sessions open now are followed from the start.
INSERT INTO radacct_changes (radacctid, changed_at)
    SELECT radacctid, CAST(strftime('%s', 'now') AS INTEGER) FROM radacct
     WHERE acctstoptime IS NULL;

-- Where the usage ingest got to in radacct_changes (the highest id read; the gap
-- column stays '{}' on SQLite).
ALTER TABLE "usage_ingest" ADD COLUMN "change_cursor" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "usage_ingest" ADD COLUMN "change_gaps" TEXT NOT NULL DEFAULT '{}';
