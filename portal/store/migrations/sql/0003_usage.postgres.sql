-- Usage accounting: per-day totals built from radacct by portal.usage.ingest,
-- the ingest's per-session memory and cursor, and live rates from the shaper.
CREATE TABLE "usage_daily" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL,
    "day" DATE NOT NULL,
    "bytes_in" BIGINT NOT NULL CHECK ("bytes_in" >= 0),
    "bytes_out" BIGINT NOT NULL CHECK ("bytes_out" >= 0),
    CONSTRAINT "uid_usage_daily_usernam_697e39" UNIQUE ("username", "day")
);
CREATE TABLE "usage_sessions" (
    "acctuniqueid" VARCHAR(32) NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL,
    "bytes_in" BIGINT NOT NULL,
    "bytes_out" BIGINT NOT NULL,
    "seen_at" BIGINT NOT NULL,
    "prev_bytes_in" BIGINT,
    "prev_bytes_out" BIGINT,
    "prev_seen_at" BIGINT,
    "stopped_at" BIGINT
);
CREATE INDEX "idx_usage_sessions_stopped_at" ON "usage_sessions" ("stopped_at");
CREATE TABLE "usage_ingest" (
    "id" SERIAL NOT NULL PRIMARY KEY CHECK ("id" = 1),
    "watermark" BIGINT NOT NULL,
    "last_run_at" BIGINT NOT NULL
);
INSERT INTO "usage_ingest" ("id", "watermark", "last_run_at") VALUES (1, 0, 0);
CREATE TABLE "live_rates" (
    "username" VARCHAR(64) NOT NULL PRIMARY KEY,
    "down_bps" BIGINT NOT NULL CHECK ("down_bps" >= 0),
    "up_bps" BIGINT NOT NULL CHECK ("up_bps" >= 0),
    "sampled_at" TIMESTAMPTZ NOT NULL
);
-- The ingest follows radacct by update/stop time; the portal finds a
-- subscriber's open session and a day's sessions by username + start.
CREATE INDEX "radacct_acctupdatetime" ON radacct (acctupdatetime);
CREATE INDEX "radacct_username_start" ON radacct (username, acctstarttime);
CREATE INDEX "radacct_acctstoptime" ON radacct (acctstoptime);
CREATE INDEX "radacct_open_user" ON radacct (username) WHERE acctstoptime IS NULL;
