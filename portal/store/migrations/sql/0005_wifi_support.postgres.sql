-- 0005: WiFi management through a TR-069 ACS, support tickets, operators.
CREATE TABLE "acs_servers" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(16) NOT NULL CHECK ("kind" IN ('genieacs')),
    "url" VARCHAR(500) NOT NULL,
    "username" VARCHAR(128) NOT NULL,
    "password" VARCHAR(256) NOT NULL,
    "match" VARCHAR(16) NOT NULL CHECK ("match" IN ('tag', 'username')),
    "timeout_ms" INT NOT NULL CHECK ("timeout_ms" BETWEEN 100 AND 120000),
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
ALTER TABLE "resellers" ADD COLUMN "acs_id" INT REFERENCES "acs_servers" ("id") ON DELETE SET NULL;
CREATE TABLE "wifi_tasks" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "device_id" VARCHAR(256) NOT NULL,
    "acs_task_id" VARCHAR(64),
    "action" VARCHAR(16) NOT NULL CHECK ("action" IN ('wifi', 'reboot')),
    "band" VARCHAR(8) CHECK ("band" IS NULL OR "band" IN ('2.4', '5')),
    "detail" VARCHAR(500) NOT NULL,
    "status" VARCHAR(16) NOT NULL
        CHECK ("status" IN ('sending', 'pending', 'done', 'faulted', 'failed')),
    "offline" BOOL NOT NULL,
    "message" VARCHAR(500) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE CASCADE
);
CREATE INDEX "idx_wifi_tasks_subscri_89cea5" ON "wifi_tasks" ("subscriber_id", "created_at");
CREATE TABLE "operators" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "password_hash" VARCHAR(256) NOT NULL,
    "active" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE TABLE "tickets" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "category" VARCHAR(16) NOT NULL
        CHECK ("category" IN ('slow', 'no_connection', 'billing', 'wifi', 'other')),
    "subject" VARCHAR(200) NOT NULL,
    "status" VARCHAR(16) NOT NULL CHECK ("status" IN ('open', 'answered', 'closed')),
    "diagnostics" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "subscriber_id" INT NOT NULL REFERENCES "subscribers" ("id") ON DELETE CASCADE
);
CREATE INDEX "idx_tickets_subscri_0f0956" ON "tickets" ("subscriber_id", "created_at");
CREATE INDEX "idx_tickets_status_updated" ON "tickets" ("status", "updated_at");
CREATE TABLE "ticket_messages" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "author_kind" VARCHAR(16) NOT NULL CHECK ("author_kind" IN ('customer', 'operator')),
    "author" VARCHAR(64) NOT NULL,
    "body" TEXT NOT NULL,
    "internal" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "ticket_id" INT NOT NULL REFERENCES "tickets" ("id") ON DELETE CASCADE
);
CREATE INDEX "idx_ticket_messages_ticket" ON "ticket_messages" ("ticket_id", "id");
