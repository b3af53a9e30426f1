-- Who wrote a change_journal row (dns_filter/journal_contract.json, "origins"):
-- followers skip their own rows by this column instead of reading the payload.
ALTER TABLE "change_journal" ADD COLUMN "origin" VARCHAR(32) NOT NULL DEFAULT 'portal';
-- Rows written before: sessions came from the usage ingest, speeds the enforcer
-- marked in the payload; the rest were the portal's or the CLI's (told apart from now on).
UPDATE "change_journal" SET "origin" = 'ingest' WHERE "kind" = 'session';
UPDATE "change_journal" SET "origin" = 'enforcer'
 WHERE "kind" = 'speed' AND "payload" LIKE '%"source": "enforcer"%';
