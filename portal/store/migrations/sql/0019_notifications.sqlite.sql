-- Notifications to subscribers (issue 22): an outbox row per (event, channel, target),
-- each subscriber's channel preferences and quiet hours, the browsers' push
-- subscriptions, the VAPID key pair and per-reseller, per-language templates.

-- One row per message to send. dedup_key says what makes the event unique (e.g. the
-- expiry date a reminder is about, the journal row of a FUP tier) plus the channel
-- and target, so two notifiers, a restart or a re-read journal never queue it twice.
-- state: pending -> claimed (a notifier holds it until lease_until; nothing has left)
-- -> sending (the point of no return is committed) -> sent | pending (retry, after
-- next_try_at) | failed (attempts exhausted); a notifier that died in 'sending'
-- leaves the row 'unknown' (maybe delivered: never sent again by itself, resend it).
-- Times are epoch seconds (compared in SQL the same way on both databases).
CREATE TABLE "notification_outbox" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "username" VARCHAR(64) NOT NULL,
    "event" VARCHAR(32) NOT NULL,
    "channel" VARCHAR(16) NOT NULL CHECK ("channel" IN ('email', 'sms', 'push')),
    "target" VARCHAR(1000) NOT NULL,
    "dedup_key" VARCHAR(400) NOT NULL UNIQUE,
    "language" VARCHAR(16) NOT NULL DEFAULT 'en',
    "subject" VARCHAR(300) NOT NULL DEFAULT '',
    "body" TEXT NOT NULL,
    "state" VARCHAR(16) NOT NULL DEFAULT 'pending'
        CHECK ("state" IN ('pending', 'claimed', 'sending', 'sent', 'failed', 'unknown')),
    "attempts" INT NOT NULL DEFAULT 0,
    "next_try_at" REAL NOT NULL,
    "lease_until" REAL,
    "claimed_by" VARCHAR(128) NOT NULL DEFAULT '',
    "last_error" VARCHAR(500) NOT NULL DEFAULT '',
    "created_at" REAL NOT NULL,
    "sent_at" REAL,
    "resend_of" INTEGER REFERENCES "notification_outbox" ("id") ON DELETE SET NULL
);
CREATE INDEX "idx_notification_outbox_due" ON "notification_outbox" ("state", "next_try_at");
CREATE INDEX "idx_notification_outbox_user" ON "notification_outbox" ("username", "id");

CREATE TABLE "notification_prefs" (
    "username" VARCHAR(64) NOT NULL PRIMARY KEY,
    "email" INT NOT NULL DEFAULT 1,
    "sms" INT NOT NULL DEFAULT 1,
    "push" INT NOT NULL DEFAULT 1,
    "quiet_start" VARCHAR(5) NOT NULL DEFAULT '',
    "quiet_end" VARCHAR(5) NOT NULL DEFAULT '',
    "updated_at" REAL NOT NULL
);

CREATE TABLE "push_subscriptions" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "username" VARCHAR(64) NOT NULL,
    "endpoint" VARCHAR(1000) NOT NULL UNIQUE,
    "p256dh" VARCHAR(200) NOT NULL,
    "auth" VARCHAR(100) NOT NULL,
    "created_at" REAL NOT NULL
);
CREATE INDEX "idx_push_subscriptions_user" ON "push_subscriptions" ("username");

-- Keys every notifier and portal instance shares (the VAPID pair, made on first use).
CREATE TABLE "notifier_keys" (
    "name" VARCHAR(32) NOT NULL PRIMARY KEY,
    "private_pem" TEXT NOT NULL,
    "public_b64" VARCHAR(200) NOT NULL,
    "created_at" REAL NOT NULL
);

-- A reseller's own wording of an event on a channel in a language (reseller_id NULL:
-- the operator's default for every reseller); the built-in English text otherwise.
CREATE TABLE "notification_templates" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "reseller_id" INT REFERENCES "resellers" ("id") ON DELETE CASCADE,
    "language" VARCHAR(16) NOT NULL,
    "event" VARCHAR(32) NOT NULL,
    "channel" VARCHAR(16) NOT NULL CHECK ("channel" IN ('email', 'sms', 'push')),
    "subject" VARCHAR(300) NOT NULL DEFAULT '',
    "body" TEXT NOT NULL
);
CREATE UNIQUE INDEX "uq_notification_templates" ON "notification_templates"
    (COALESCE("reseller_id", 0), "language", "event", "channel");

-- Where a notifier's journal follower stopped (its restart re-reads from here; the
-- dedup key makes a re-read harmless).
CREATE TABLE "notifier_cursor" (
    "name" VARCHAR(32) NOT NULL PRIMARY KEY,
    "journal_id" INTEGER NOT NULL
);
