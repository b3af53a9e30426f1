-- Edge boxes (issue 16): every enforcer and resolver runs as a named box and
-- heartbeats one row per (box, role); a NAS belongs to a box (NULL: none named,
-- see portal/enforcer/README.md for who owns it then); enforcement state is kept
-- per (username, target) so two boxes never rewrite each other's row.
CREATE TABLE "boxes" (
    "name" VARCHAR(64) NOT NULL,
    "role" VARCHAR(16) NOT NULL CHECK ("role" IN ('enforcer', 'resolver')),
    "last_seen" REAL NOT NULL,
    "started_at" REAL NOT NULL,
    "shaper" INT NOT NULL DEFAULT 0,
    "shaped_networks" TEXT NOT NULL DEFAULT '',
    "journal_cursor" BIGINT,
    PRIMARY KEY ("name", "role")
);
ALTER TABLE nas ADD COLUMN box VARCHAR(64);
CREATE INDEX "nas_box" ON nas (box);
-- enforcement_state: one row per (username, target). SQLite cannot change a
-- primary key in place: copy into a new table. Rows of the old "shaper" target
-- name no box; they are dropped and rebuilt by the owning box's next pass.
CREATE TABLE "enforcement_state_new" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT,
    "username" VARCHAR(64) NOT NULL,
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
INSERT INTO "enforcement_state_new" ("username", "target", "acct_session_id", "address",
    "desired_action", "desired_down_kbps", "desired_up_kbps", "reason", "state",
    "applied_action", "applied_down_kbps", "applied_up_kbps", "applied_at", "attempts",
    "last_error", "next_retry_at", "updated_at")
SELECT "username", "target", "acct_session_id", "address", "desired_action",
    "desired_down_kbps", "desired_up_kbps", "reason", "state", "applied_action",
    "applied_down_kbps", "applied_up_kbps", "applied_at", "attempts", "last_error",
    "next_retry_at", "updated_at" FROM "enforcement_state" WHERE "target" <> 'shaper';
DROP TABLE "enforcement_state";
ALTER TABLE "enforcement_state_new" RENAME TO "enforcement_state";
CREATE UNIQUE INDEX "uid_enforcement_state_target" ON "enforcement_state" ("username", "target");
CREATE INDEX "idx_enforcement_state_retry" ON "enforcement_state" ("state", "next_retry_at");
CREATE INDEX "idx_enforcement_state_target" ON "enforcement_state" ("target");
