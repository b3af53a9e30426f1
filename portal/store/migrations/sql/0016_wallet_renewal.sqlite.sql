-- Money the subscriber can see (issue 19): receipts, prepaid next cycles, payment
-- instructions and self-renewal per reseller.
-- SQLite cannot alter a CHECK: rebuild invoices (the documented 12-step way, foreign
-- keys off so the copy neither cascades nor is refused).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE "invoices_new" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "number" VARCHAR(32) NOT NULL,
    "year" INT NOT NULL,
    "seq" INT NOT NULL CHECK ("seq" > 0),
    "kind" VARCHAR(16) NOT NULL CHECK ("kind" IN ('invoice', 'credit_note', 'receipt')),
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
INSERT INTO "invoices_new" SELECT "id", "number", "year", "seq", "kind", "issued_at",
    "company_name", "registration", "currency", "tax_rate_bp", "customer_name", "username",
    "subtotal_cents", "tax_cents", "total_cents", "reseller_id", "subscriber_id" FROM "invoices";
DROP TABLE "invoices";
ALTER TABLE "invoices_new" RENAME TO "invoices";
CREATE INDEX "idx_invoices_subscri_757d9b" ON "invoices" ("subscriber_id", "issued_at");
CREATE UNIQUE INDEX "uid_invoices_reseller_number" ON "invoices" ("reseller_id", "number");

CREATE TABLE "prepaid_cycles" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "starts_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "paid_by" VARCHAR(16) NOT NULL CHECK ("paid_by" IN ('wallet', 'cash', 'free')),
    "amount_cents" BIGINT NOT NULL CHECK ("amount_cents" >= 0),
    "reference" VARCHAR(128) NOT NULL,
    "created_by" VARCHAR(128) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "started_at" TIMESTAMP,
    "invoice_id" BIGINT REFERENCES "invoices" ("id") ON DELETE RESTRICT,
    "plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE RESTRICT,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT,
    CHECK ("expires_at" > "starts_at")
) /* A billing cycle paid ahead: the enforcer starts it at the old expiry (started_at). */;
CREATE INDEX "idx_prepaid_cycles_due" ON "prepaid_cycles" ("started_at", "starts_at");
CREATE INDEX "idx_prepaid_cycles_subscriber" ON "prepaid_cycles" ("subscriber_id", "starts_at");
ALTER TABLE resellers ADD COLUMN allow_self_renewal BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE resellers ADD COLUMN payment_instructions VARCHAR(1000) NOT NULL DEFAULT '';
ALTER TABLE resellers ADD COLUMN payment_contact VARCHAR(200) NOT NULL DEFAULT '';
COMMIT;
PRAGMA foreign_keys = ON;
