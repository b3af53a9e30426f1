-- Parental controls: what dns_filter blocked, per subscriber (dns_filter/README.md,
-- "Block log"). Written by the resolver every ~1 s, read by the Parental tab.
-- day is the UTC date as 'YYYY-MM-DD'; blocked_at is epoch seconds (UTC).
CREATE TABLE "dns_block_daily" (
    "username" VARCHAR(64) NOT NULL,
    "day" VARCHAR(10) NOT NULL,
    "category" VARCHAR(64) NOT NULL,
    "count" BIGINT NOT NULL CHECK ("count" >= 0),
    PRIMARY KEY ("username", "day", "category")
);
CREATE INDEX "idx_dns_block_daily_day" ON "dns_block_daily" ("day");
CREATE TABLE "dns_block_recent" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "domain" VARCHAR(253) NOT NULL,
    "category" VARCHAR(64) NOT NULL,
    "blocked_at" REAL NOT NULL
);
CREATE INDEX "idx_dns_block_recent_username" ON "dns_block_recent" ("username", "blocked_at");
CREATE INDEX "idx_dns_block_recent_blocked_at" ON "dns_block_recent" ("blocked_at");
