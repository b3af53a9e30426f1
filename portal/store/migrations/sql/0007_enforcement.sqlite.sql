-- Enforcement state: per subscriber, what the enforcer wants on the network
-- (desired) and what the shaper / NAS confirmed (applied), with retries.
CREATE TABLE "enforcement_state" (
    "username" VARCHAR(64) NOT NULL PRIMARY KEY,
    "target" VARCHAR(64) NOT NULL,
    "acct_session_id" VARCHAR(64) NOT NULL DEFAULT '',
    "address" VARCHAR(64) NOT NULL DEFAULT '',
    "desired_action" VARCHAR(16) NOT NULL CHECK ("desired_action" IN ('rate', 'disconnect')),
    "desired_down_kbps" INT NOT NULL CHECK ("desired_down_kbps" > 0),
    "desired_up_kbps" INT NOT NULL CHECK ("desired_up_kbps" > 0),
    "reason" VARCHAR(32) NOT NULL,
    "state" VARCHAR(16) NOT NULL DEFAULT 'pending'
        CHECK ("state" IN ('pending', 'applied', 'retrying', 'failed', 'unenforced')),
    "applied_action" VARCHAR(16),
    "applied_down_kbps" INT,
    "applied_up_kbps" INT,
    "applied_at" REAL,
    "attempts" INT NOT NULL DEFAULT 0 CHECK ("attempts" >= 0),
    "last_error" TEXT NOT NULL DEFAULT '',
    "next_retry_at" REAL,
    "updated_at" REAL NOT NULL
);
CREATE INDEX "idx_enforcement_state_retry" ON "enforcement_state" ("state", "next_retry_at");
-- The enforcer finds open sessions (acctstoptime IS NULL) on every reconcile.
CREATE INDEX IF NOT EXISTS "radacct_open_username" ON radacct (acctstoptime, username);
