-- The resolver follows sessions as deltas (issue 16). Two views, the resolver's
-- read-only contract (dns_filter/README.md):
-- 1. dns_policy gains the NAS of each session (a resolver serves the sessions of
--    the NASes it is told about, `[dns] nas`) and the on-link Framed-IPv6-Prefix
--    next to the delegated one (a subscriber's queries come from either).
DROP VIEW dns_policy;
CREATE VIEW dns_policy AS
SELECT host(r.framedipaddress) AS address, s.username AS username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END AS categories,
       host(r.nasipaddress) AS nasipaddress
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.framedipaddress IS NOT NULL
UNION ALL
SELECT text(r.framedipv6prefix), s.username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END,
       host(r.nasipaddress)
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.framedipv6prefix IS NOT NULL
UNION ALL
SELECT text(r.delegatedipv6prefix), s.username,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END,
       host(r.nasipaddress)
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.delegatedipv6prefix IS NOT NULL;
-- 2. dns_session: one row per radacct row of a subscriber, open or stopped, read
--    by radacctid for the rows radacct_changes names.
CREATE VIEW dns_session AS
SELECT r.radacctid AS radacctid, s.username AS username, host(r.nasipaddress) AS nasipaddress,
       CASE WHEN r.acctstoptime IS NULL THEN 1 ELSE 0 END AS open,
       host(r.framedipaddress) AS framedipaddress,
       text(r.framedipv6prefix) AS framedipv6prefix,
       text(r.delegatedipv6prefix) AS delegatedipv6prefix,
       CASE WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END AS categories
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id;
