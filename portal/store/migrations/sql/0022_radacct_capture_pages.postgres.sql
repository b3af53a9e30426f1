-- Accounting updates rewrite fewer indexes (issue 14). radacct_acctupdatetime
-- (0003) served "changed since the watermark" scans; the ingest and the enforcer
-- follow radacct_changes by id since 0013, and no query reads radacct by
-- acctupdatetime any more. It made every Interim-Update a non-HOT update (all of
-- radacct's indexes rewritten), on top of the change row 0013's trigger inserts.
-- radacct_changes keeps its BIGSERIAL: a sequence never hands out an id twice.
DROP INDEX IF EXISTS "radacct_acctupdatetime";
