-- Ingest shared across edge boxes (issue 17): when the last periodic pass (the scan
-- for stale sessions and the housekeeping deletes) ran, so that one box a minute runs
-- it, whichever comes first, instead of every box scanning every open session.
ALTER TABLE "usage_ingest" ADD COLUMN "full_run_at" BIGINT NOT NULL DEFAULT 0;
