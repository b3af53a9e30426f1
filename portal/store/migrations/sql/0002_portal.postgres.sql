CREATE TABLE "audit_log" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "created_at" TIMESTAMPTZ NOT NULL,
    "actor" VARCHAR(128) NOT NULL,
    "username" VARCHAR(64),
    "action" VARCHAR(64) NOT NULL,
    "detail" TEXT NOT NULL,
    "ip" VARCHAR(45) NOT NULL
);
CREATE INDEX "idx_audit_log_usernam_b6341e" ON "audit_log" ("username");
CREATE TABLE "change_journal" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "created_at" TIMESTAMPTZ NOT NULL,
    "username" VARCHAR(64),
    "kind" VARCHAR(32) NOT NULL,
    "payload" TEXT NOT NULL
);
CREATE TABLE "login_failures" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "ip" VARCHAR(45) NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX "idx_login_failu_ip_4a5dac" ON "login_failures" ("ip", "created_at");
CREATE TABLE "resellers" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(64) NOT NULL UNIQUE,
    "company_name" VARCHAR(128) NOT NULL,
    "tagline" VARCHAR(200) NOT NULL,
    "footer_text" VARCHAR(500) NOT NULL,
    "primary_color" VARCHAR(7) NOT NULL,
    "custom_domain" VARCHAR(253) UNIQUE,
    "logo_bytes" BYTEA,
    "logo_content_type" VARCHAR(32),
    "registration" VARCHAR(500) NOT NULL,
    "tax_rate_bp" INT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "allow_plan_change" BOOL NOT NULL,
    "allow_downgrade_refund" BOOL NOT NULL,
    "price_per_gb_cents" INT NOT NULL,
    "parental_enabled" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "parent_id" INT REFERENCES "resellers" ("id") ON DELETE RESTRICT
);
CREATE TABLE "plans" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(64) NOT NULL,
    "down_kbps" INT NOT NULL,
    "up_kbps" INT NOT NULL,
    "price_cents" INT NOT NULL,
    "period_days" INT NOT NULL,
    "quota_bytes" BIGINT NOT NULL,
    "offered" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_plans_reselle_a1d8d9" UNIQUE ("reseller_id", "name")
);
CREATE TABLE "fup_tiers" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "period" VARCHAR(8) NOT NULL,
    "tier" INT NOT NULL,
    "threshold_bytes" BIGINT NOT NULL,
    "down_kbps" INT NOT NULL,
    "up_kbps" INT NOT NULL,
    "plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_fup_tiers_plan_id_64377e" UNIQUE ("plan_id", "period", "tier")
);
CREATE TABLE "revoked_tokens" (
    "jti" VARCHAR(64) NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "revoked_at" TIMESTAMPTZ NOT NULL
);
CREATE TABLE "subscribers" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "status" VARCHAR(16) NOT NULL,
    "cycle_start" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "full_name" VARCHAR(128) NOT NULL,
    "email" VARCHAR(254) NOT NULL,
    "phone" VARCHAR(32) NOT NULL,
    "address" VARCHAR(500) NOT NULL,
    "balance_cents" BIGINT NOT NULL CHECK ("balance_cents" >= 0),
    "created_at" TIMESTAMPTZ NOT NULL,
    "plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE RESTRICT,
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT
);
CREATE TABLE "parental_settings" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "enabled" BOOL NOT NULL,
    "categories" VARCHAR(500) NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "subscriber_id" INT NOT NULL UNIQUE REFERENCES "subscribers" ("id") ON DELETE CASCADE
);
CREATE TABLE "wallet_entries" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "amount_cents" BIGINT NOT NULL,
    "balance_after_cents" BIGINT NOT NULL,
    "reason" VARCHAR(32) NOT NULL,
    "reference" VARCHAR(128) NOT NULL,
    "created_by" VARCHAR(128) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT
);
ALTER TABLE nas ADD COLUMN profile VARCHAR(32) NOT NULL DEFAULT 'mikrotik';
ALTER TABLE nas ADD COLUMN coa_port INT NOT NULL DEFAULT 3799;
CREATE INDEX "idx_change_journal_username" ON "change_journal" ("username");
-- The dns_filter policy contract: address (IPv4 or IPv6 prefix) -> categories.
CREATE VIEW dns_policy AS
SELECT host(r.framedipaddress) AS address, s.username AS username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END AS categories
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.framedipaddress IS NOT NULL
UNION ALL
SELECT text(r.delegatedipv6prefix), s.username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.delegatedipv6prefix IS NOT NULL;
