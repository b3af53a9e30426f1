-- Every dashboard request sums one subscriber's usage_daily rows for the cycle
-- (up to a month of days); with the counters in the index the sum is an
-- index-only scan instead of one heap page per day.
CREATE INDEX "idx_usage_daily_totals" ON "usage_daily" ("username", "day") INCLUDE ("bytes_in", "bytes_out");
