"""Usage accounting: radacct -> usage_daily, and reading it back.

Public API (the enforcer and the portal use these):
  ingest.ingest_once(settings, now=None) -> Result   one pass in one transaction
  ingest.ingest_job(config) -> Result                 one pass, settings from config
  ingest.run_forever(config, every_seconds=60, stop)  the periodic job
  ingest.step(prev, row) -> Step                      the rule for one radacct row
  queries.totals / history / sessions_on              reading back per username
  days.cycle_start / split / spread                   local days and billing cycles
"""
