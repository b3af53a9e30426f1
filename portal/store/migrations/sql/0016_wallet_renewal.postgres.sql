-- Money the subscriber can see (issue 19): receipts, prepaid next cycles, payment
-- instructions and self-renewal per reseller.
ALTER TABLE "invoices" DROP CONSTRAINT IF EXISTS "invoices_kind_check";
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_kind_check"
    CHECK ("kind" IN ('invoice', 'credit_note', 'receipt'));

CREATE TABLE "prepaid_cycles" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "starts_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "paid_by" VARCHAR(16) NOT NULL CHECK ("paid_by" IN ('wallet', 'cash', 'free')),
    "amount_cents" BIGINT NOT NULL CHECK ("amount_cents" >= 0),
    "reference" VARCHAR(128) NOT NULL,
    "created_by" VARCHAR(128) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "started_at" TIMESTAMPTZ,
    "invoice_id" BIGINT REFERENCES "invoices" ("id") ON DELETE RESTRICT,
    "plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE RESTRICT,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT,
    CHECK ("expires_at" > "starts_at")
);
COMMENT ON TABLE "prepaid_cycles" IS 'A billing cycle paid ahead: the enforcer starts it at the old expiry (started_at).';
CREATE INDEX "idx_prepaid_cycles_due" ON "prepaid_cycles" ("started_at", "starts_at");
CREATE INDEX "idx_prepaid_cycles_subscriber" ON "prepaid_cycles" ("subscriber_id", "starts_at");
ALTER TABLE resellers ADD COLUMN allow_self_renewal BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE resellers ADD COLUMN payment_instructions VARCHAR(1000) NOT NULL DEFAULT '';
ALTER TABLE resellers ADD COLUMN payment_contact VARCHAR(200) NOT NULL DEFAULT '';
