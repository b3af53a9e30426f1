-- Every dashboard request sums one subscriber's usage_daily rows for the cycle
-- (up to a month of days); with the counters in the index those rows are read
-- from adjacent index pages instead of one table page per day.
CREATE INDEX "idx_usage_daily_totals" ON "usage_daily" ("username", "day", "bytes_in", "bytes_out");
