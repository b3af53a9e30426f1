-- Edge boxes (issue 16): every enforcer and resolver runs as a named box and
-- heartbeats one row per (box, role); a NAS belongs to a box (NULL: none named,
-- see portal/enforcer/README.md for who owns it then); enforcement state is kept
-- per (username, target) so two boxes never rewrite each other's row.
CREATE TABLE "boxes" (
    "name" VARCHAR(64) NOT NULL,
    "role" VARCHAR(16) NOT NULL CHECK ("role" IN ('enforcer', 'resolver')),
    "last_seen" DOUBLE PRECISION NOT NULL,
    "started_at" DOUBLE PRECISION NOT NULL,
    "shaper" INT NOT NULL DEFAULT 0,
    "shaped_networks" TEXT NOT NULL DEFAULT '',
    "journal_cursor" BIGINT,
    PRIMARY KEY ("name", "role")
);
ALTER TABLE nas ADD COLUMN box VARCHAR(64);
CREATE INDEX "nas_box" ON nas (box);
-- enforcement_state: one row per (username, target). Rows of the old "shaper"
-- target name no box; they are dropped and rebuilt by the owning box's next pass.
DELETE FROM "enforcement_state" WHERE "target" = 'shaper';
ALTER TABLE "enforcement_state" DROP CONSTRAINT "enforcement_state_pkey";
ALTER TABLE "enforcement_state" ADD COLUMN "id" BIGSERIAL PRIMARY KEY;
CREATE UNIQUE INDEX "uid_enforcement_state_target" ON "enforcement_state" ("username", "target");
CREATE INDEX "idx_enforcement_state_target" ON "enforcement_state" ("target");
