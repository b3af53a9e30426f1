-- Server-made text in the subscriber's language (issue 20). An invoice line and a WiFi
-- task's message were stored as English sentences; they now also carry a stable kind
-- and its parameters (JSON), from which the portal and the PDF say them in the reader's
-- language. The English columns stay as they were (old rows, old API clients); an old
-- row has kind '' and is shown as it was stored.
ALTER TABLE "invoice_lines" ADD COLUMN "kind" VARCHAR(32) NOT NULL DEFAULT '';
ALTER TABLE "invoice_lines" ADD COLUMN "params" TEXT NOT NULL DEFAULT '{}';
ALTER TABLE "wifi_tasks" ADD COLUMN "message_code" VARCHAR(32) NOT NULL DEFAULT '';
ALTER TABLE "wifi_tasks" ADD COLUMN "message_params" TEXT NOT NULL DEFAULT '{}';
