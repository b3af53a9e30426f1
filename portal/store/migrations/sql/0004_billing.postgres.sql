-- Billing: top-ups, invoices (gap-free numbers per reseller and year), idempotency keys.
CREATE TABLE "invoice_counters" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "year" INT NOT NULL,
    "last_seq" INT NOT NULL CHECK ("last_seq" >= 0),
    "reseller_id" INT NOT NULL REFERENCES "resellers" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_invoice_cou_reselle_cf1d81" UNIQUE ("reseller_id", "year")
);
CREATE TABLE "idempotency_keys" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "key" VARCHAR(128) NOT NULL,
    "request_hash" VARCHAR(64) NOT NULL,
    "status" INT NOT NULL,
    "response" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_idempotency_subscri_be124f" UNIQUE ("subscriber_id", "key")
);
CREATE TABLE "invoices" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "number" VARCHAR(32) NOT NULL,
    "year" INT NOT NULL,
    "seq" INT NOT NULL CHECK ("seq" > 0),
    "kind" VARCHAR(16) NOT NULL CHECK ("kind" IN ('invoice', 'credit_note')),
    "issued_at" TIMESTAMPTZ NOT NULL,
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
);
CREATE INDEX "idx_invoices_subscri_757d9b" ON "invoices" ("subscriber_id", "issued_at");
CREATE TABLE "invoice_lines" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "position" INT NOT NULL,
    "description" VARCHAR(255) NOT NULL,
    "amount_cents" BIGINT NOT NULL,
    "invoice_id" BIGINT NOT NULL REFERENCES "invoices" ("id") ON DELETE CASCADE
);
CREATE TABLE "topups" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "gb" INT NOT NULL CHECK ("gb" > 0),
    "bytes" BIGINT NOT NULL,
    "price_per_gb_cents" INT NOT NULL,
    "amount_cents" BIGINT NOT NULL CHECK ("amount_cents" >= 0),
    "cycle_start" TIMESTAMPTZ NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "invoice_id" BIGINT REFERENCES "invoices" ("id") ON DELETE RESTRICT,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT
);
CREATE INDEX "idx_topups_subscri_c73a1a" ON "topups" ("subscriber_id", "created_at");
CREATE UNIQUE INDEX "uid_invoices_reseller_number" ON "invoices" ("reseller_id", "number");
CREATE INDEX "idx_wallet_entries_subscriber" ON "wallet_entries" ("subscriber_id", "id");
