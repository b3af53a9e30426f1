-- 0011: token epochs (a password change, disabling or "sign out everywhere" bumps
-- it; tokens carrying an older epoch are refused) and separate lockout counters for
-- customer and operator logins.
ALTER TABLE "subscribers" ADD COLUMN "token_epoch" INT NOT NULL DEFAULT 0;
ALTER TABLE "operators" ADD COLUMN "token_epoch" INT NOT NULL DEFAULT 0;
ALTER TABLE "login_failures" ADD COLUMN "kind" VARCHAR(16) NOT NULL DEFAULT 'customer'
    CHECK ("kind" IN ('customer', 'operator'));
-- Operator failures were written as "operator:<name>"; the kind now says it.
UPDATE "login_failures" SET "kind" = 'operator', "username" = substr("username", 10)
 WHERE "username" LIKE 'operator:%';
-- The per-account throttle counts one username's failures across addresses.
CREATE INDEX "idx_login_failu_user_kind" ON "login_failures" ("username", "kind", "created_at");
