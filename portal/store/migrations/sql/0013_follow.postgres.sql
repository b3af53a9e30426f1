-- Gap-safe, woken followers (issue 16).
-- 1. A committed change_journal insert NOTIFYs its followers (the enforcer, the
--    resolver); one notification per statement, delivered at commit. Followers
--    still poll as the fallback.
CREATE FUNCTION ispedge_notify_journal() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('ispedge_journal', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER change_journal_notify AFTER INSERT ON change_journal
    FOR EACH STATEMENT EXECUTE FUNCTION ispedge_notify_journal();

-- 2. Accounting change capture: FreeRADIUS updates a radacct row in place (at
--    second granularity), so "acctupdatetime > last seen" misses rows. Every
--    insert and update of radacct appends the row id here, in the writer's own
--    transaction (FreeRADIUS's queries are unchanged); the usage ingest and the
--    enforcer follow it by id, gap-safely (dns_filter.gapcursor).
CREATE TABLE "radacct_changes" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "radacctid" BIGINT NOT NULL,
    "changed_at" BIGINT NOT NULL
);
COMMENT ON TABLE "radacct_changes" IS 'One row per insert or update of radacct (trigger); followed by id.';
-- SECURITY DEFINER: FreeRADIUS's database role needs no grant on radacct_changes.
CREATE FUNCTION ispedge_radacct_changed() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO radacct_changes (radacctid, changed_at)
        VALUES (NEW.radacctid, extract(epoch FROM now())::bigint);
    PERFORM pg_notify('ispedge_radacct', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER radacct_change_capture AFTER INSERT OR UPDATE ON radacct
    FOR EACH ROW EXECUTE FUNCTION ispedge_radacct_changed();
-- Sessions open now are followed from the start.
INSERT INTO radacct_changes (radacctid, changed_at)
    SELECT radacctid, extract(epoch FROM now())::bigint FROM radacct WHERE acctstoptime IS NULL;

-- 3. Where the usage ingest got to in radacct_changes: the highest id read and the
--    open gaps below it (JSON {id: [xmax, first_seen_epoch]}).
ALTER TABLE "usage_ingest" ADD COLUMN "change_cursor" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "usage_ingest" ADD COLUMN "change_gaps" TEXT NOT NULL DEFAULT '{}';
