-- Data lifecycle (issue 17).
-- 1. The per-session record: what a closed radacct row leaves behind once the
--    retention moves it out of radacct (who had which address or prefix on which
--    NAS, when, and the bytes). The Usage tab's session detail reads it beside the
--    young radacct rows. Times are epoch seconds (as FreeRADIUS writes them here).
CREATE TABLE "acct_sessions" (
    "radacctid" BIGINT NOT NULL PRIMARY KEY,
    "acctuniqueid" VARCHAR(32) NOT NULL DEFAULT '',
    "acct_session_id" VARCHAR(64) NOT NULL DEFAULT '',
    "username" VARCHAR(64) NOT NULL,
    "nas_ip" VARCHAR(45) NOT NULL DEFAULT '',
    "framed_ip" VARCHAR(45) NOT NULL DEFAULT '',
    "framed_ipv6_prefix" VARCHAR(45) NOT NULL DEFAULT '',
    "delegated_ipv6_prefix" VARCHAR(45) NOT NULL DEFAULT '',
    "started_at" BIGINT NOT NULL,
    "stopped_at" BIGINT NOT NULL,
    "bytes_in" BIGINT NOT NULL DEFAULT 0,
    "bytes_out" BIGINT NOT NULL DEFAULT 0,
    "terminate_cause" VARCHAR(32) NOT NULL DEFAULT ''
) /* Closed radacct sessions past their retention: the record kept. */;
CREATE INDEX "idx_acct_sessions_user_start" ON "acct_sessions" ("username", "started_at");
CREATE INDEX "idx_acct_sessions_framed_ip" ON "acct_sessions" ("framed_ip", "started_at");
CREATE INDEX "idx_acct_sessions_stopped" ON "acct_sessions" ("stopped_at");
-- 2. How far each followed table has been pruned: a follower whose cursor is below
--    `pruned_through` missed rows and reconciles in full (dns_filter/journal_prune.py).
CREATE TABLE "retention" (
    "name" VARCHAR(32) NOT NULL PRIMARY KEY,
    "pruned_through" BIGINT NOT NULL DEFAULT 0,
    "pruned_at" DOUBLE PRECISION NOT NULL DEFAULT 0
) /* Per pruned table: the highest id deleted, and when. */;
INSERT INTO "retention" ("name") VALUES ('change_journal');
INSERT INTO "retention" ("name") VALUES ('radacct_changes');
-- 3. Pruning by age reads these in id/time order.
CREATE INDEX "idx_audit_log_created_at" ON "audit_log" ("created_at");
CREATE INDEX "idx_radacct_stop" ON "radacct" ("acctstoptime");
