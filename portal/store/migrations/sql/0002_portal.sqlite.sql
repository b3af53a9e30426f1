CREATE TABLE "audit_log" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "actor" VARCHAR(128) NOT NULL,
    "username" VARCHAR(64),
    "action" VARCHAR(64) NOT NULL,
    "detail" TEXT NOT NULL,
    "ip" VARCHAR(45) NOT NULL
);
CREATE INDEX "idx_audit_log_usernam_b6341e" ON "audit_log" ("username");
CREATE TABLE "change_journal" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "username" VARCHAR(64),
    "kind" VARCHAR(32) NOT NULL,
    "payload" TEXT NOT NULL
) /* One row per enforcement-relevant change; dns_filter and the enforcer follow it. */;
CREATE TABLE "login_failures" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "ip" VARCHAR(45) NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE INDEX "idx_login_failu_ip_4a5dac" ON "login_failures" ("ip", "created_at");
CREATE TABLE "resellers" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64) NOT NULL UNIQUE,
    "company_name" VARCHAR(128) NOT NULL,
    "tagline" VARCHAR(200) NOT NULL,
    "footer_text" VARCHAR(500) NOT NULL,
    "primary_color" VARCHAR(7) NOT NULL,
    "custom_domain" VARCHAR(253) UNIQUE,
    "logo_bytes" BLOB,
    "logo_content_type" VARCHAR(32),
    "registration" VARCHAR(500) NOT NULL,
    "tax_rate_bp" INT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "allow_plan_change" INT NOT NULL,
    "allow_downgrade_refund" INT NOT NULL,
    "price_per_gb_cents" INT NOT NULL,
    "parental_enabled" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "parent_id" INT REFERENCES "resellers" ("id") ON DELETE RESTRICT
);
CREATE TABLE "plans" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "down_kbps" INT NOT NULL,
    "up_kbps" INT NOT NULL,
    "price_cents" INT NOT NULL,
    "period_days" INT NOT NULL,
    "quota_bytes" BIGINT NOT NULL,
    "offered" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_plans_reselle_a1d8d9" UNIQUE ("reseller_id", "name")
);
CREATE TABLE "fup_tiers" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "period" VARCHAR(8) NOT NULL,
    "tier" INT NOT NULL,
    "threshold_bytes" BIGINT NOT NULL,
    "down_kbps" INT NOT NULL,
    "up_kbps" INT NOT NULL,
    "plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_fup_tiers_plan_id_64377e" UNIQUE ("plan_id", "period", "tier")
) /* Past threshold_bytes of daily or monthly usage, the plan drops to this speed. */;
CREATE TABLE "revoked_tokens" (
    "jti" VARCHAR(64) NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "revoked_at" TIMESTAMP NOT NULL
);
CREATE TABLE "subscribers" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "status" VARCHAR(16) NOT NULL,
    "cycle_start" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "full_name" VARCHAR(128) NOT NULL,
    "email" VARCHAR(254) NOT NULL,
    "phone" VARCHAR(32) NOT NULL,
    "address" VARCHAR(500) NOT NULL,
    "balance_cents" BIGINT NOT NULL CHECK ("balance_cents" >= 0),
    "created_at" TIMESTAMP NOT NULL,
    "plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE RESTRICT,
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT
);
CREATE TABLE "parental_settings" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "enabled" INT NOT NULL,
    "categories" VARCHAR(500) NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "subscriber_id" INT NOT NULL UNIQUE REFERENCES "subscribers" ("id") ON DELETE CASCADE
) /* What dns_filter blocks for one subscriber's home (read through the dns_policy view). */;
CREATE TABLE "wallet_entries" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "amount_cents" BIGINT NOT NULL,
    "balance_after_cents" BIGINT NOT NULL,
    "reason" VARCHAR(32) NOT NULL,
    "reference" VARCHAR(128) NOT NULL,
    "created_by" VARCHAR(128) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT
);
ALTER TABLE nas ADD COLUMN profile VARCHAR(32) NOT NULL DEFAULT 'mikrotik';
ALTER TABLE nas ADD COLUMN coa_port INT NOT NULL DEFAULT 3799;
CREATE INDEX "idx_change_journal_username" ON "change_journal" ("username");
-- The dns_filter policy contract: address (IPv4 or IPv6 prefix) -> categories.
CREATE VIEW dns_policy AS
SELECT r.framedipaddress AS address, s.username AS username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END AS categories
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.framedipaddress <> ''
UNION ALL
SELECT r.delegatedipv6prefix, s.username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.delegatedipv6prefix <> '';
