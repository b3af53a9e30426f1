-- 0018: the operator console (issue 21): operator roles, the TOTP second factor and
-- the Idempotency-Keys of operator actions.
-- role: admin (everything) or support (tickets and a read-only subscriber view);
-- operators from before roles existed keep everything they could do (admin).
ALTER TABLE "operators" ADD COLUMN "role" VARCHAR(16) NOT NULL DEFAULT 'admin'
    CHECK ("role" IN ('admin', 'support'));
-- The RFC 6238 secret (base32; '' = no second factor) and the last time step a code
-- was accepted for: a code is never accepted twice (nor one of an earlier step).
ALTER TABLE "operators" ADD COLUMN "totp_secret" VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE "operators" ADD COLUMN "totp_last_step" BIGINT NOT NULL DEFAULT 0;
-- One row per operator action sent with an Idempotency-Key: claimed in the action's
-- own transaction, its answer stored before commit, so a double click or a retry
-- after 503 replays the first answer instead of acting twice.
CREATE TABLE "operator_idempotency_keys" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "operator_id" INT NOT NULL REFERENCES "operators" ("id") ON DELETE CASCADE,
    "key" VARCHAR(128) NOT NULL,
    "request_hash" VARCHAR(64) NOT NULL,
    "status" INT NOT NULL,
    "response" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    CONSTRAINT "uid_operator_idem_key" UNIQUE ("operator_id", "key")
);
CREATE INDEX "idx_operator_idem_created" ON "operator_idempotency_keys" ("created_at");
