-- Billing: top-ups, invoices (gap-free numbers per reseller and year), idempotency keys.
CREATE TABLE "invoice_counters" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "year" INT NOT NULL,
    "last_seq" INT NOT NULL CHECK ("last_seq" >= 0),
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_invoice_cou_reselle_cf1d81" UNIQUE ("reseller_id", "year")
) /* The last number issued per reseller and year; bumped inside the charging transaction. */;
CREATE TABLE "idempotency_keys" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "key" VARCHAR(128) NOT NULL,
    "request_hash" VARCHAR(64) NOT NULL,
    "status" INT NOT NULL,
    "response" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_idempotency_subscri_be124f" UNIQUE ("subscriber_id", "key")
) /* A purchase's first answer, stored in the charging transaction; a retry replays it. */;
CREATE TABLE "invoices" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "number" VARCHAR(32) NOT NULL,
    "year" INT NOT NULL,
    "seq" INT NOT NULL CHECK ("seq" > 0),
    "kind" VARCHAR(16) NOT NULL CHECK ("kind" IN ('invoice', 'credit_note')),
    "issued_at" TIMESTAMP NOT NULL,
    "company_name" VARCHAR(128) NOT NULL,
    "registration" VARCHAR(500) NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "tax_rate_bp" INT NOT NULL,
    "customer_name" VARCHAR(128) NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "subtotal_cents" BIGINT NOT NULL,
    "tax_cents" BIGINT NOT NULL,
    "total_cents" BIGINT NOT NULL CHECK ("total_cents" = "subtotal_cents" + "tax_cents"),
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_invoices_reselle_e7ff57" UNIQUE ("reseller_id", "year", "seq")
) /* An immutable document: the seller's and buyer's details are copied at issue time. */;
CREATE INDEX "idx_invoices_subscri_757d9b" ON "invoices" ("subscriber_id", "issued_at");
CREATE TABLE "invoice_lines" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "position" INT NOT NULL,
    "description" VARCHAR(255) NOT NULL,
    "amount_cents" BIGINT NOT NULL,
    "invoice_id" BIGINT NOT NULL REFERENCES "invoices" ("id") ON DELETE CASCADE
);
CREATE TABLE "topups" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "gb" INT NOT NULL CHECK ("gb" > 0),
    "bytes" BIGINT NOT NULL,
    "price_per_gb_cents" INT NOT NULL,
    "amount_cents" BIGINT NOT NULL CHECK ("amount_cents" >= 0),
    "cycle_start" TIMESTAMP NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "invoice_id" BIGINT REFERENCES "invoices" ("id") ON DELETE RESTRICT,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT
) /* Data bought for one billing cycle: raises that cycle's allowance, expires at its reset. */;
CREATE INDEX "idx_topups_subscri_c73a1a" ON "topups" ("subscriber_id", "created_at");
CREATE UNIQUE INDEX "uid_invoices_reseller_number" ON "invoices" ("reseller_id", "number");
CREATE INDEX "idx_wallet_entries_subscriber" ON "wallet_entries" ("subscriber_id", "id");
