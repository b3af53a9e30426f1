-- One row per committed plan change: counted by the daily limit inside the
-- charging transaction (billing.plan_changes_per_day), and the change history.
CREATE TABLE "plan_changes" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "changed_at" TIMESTAMP NOT NULL,
    "from_plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE RESTRICT,
    "to_plan_id" INT NOT NULL REFERENCES "plans" ("id") ON DELETE RESTRICT,
    "amount_cents" BIGINT NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE RESTRICT
) /* A committed plan change: what moved and when (the server's clock). */;
CREATE INDEX "idx_plan_changes_subscriber" ON "plan_changes" ("subscriber_id", "changed_at");
