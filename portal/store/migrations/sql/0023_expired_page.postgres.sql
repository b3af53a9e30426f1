-- Expired subscribers see why (issue 19): while a subscriber's subscription has
-- expired, or the operator has disabled it, the resolver's views give it the one
-- pseudo-category 'expired' instead of its parental categories. dns_filter answers
-- every name but its walled garden (`[dns] expired_allow`, the portal's own names)
-- with the portal's address (`expired_page_ipv4/ipv6`), where a branded page says
-- why and offers renewal. The expiry is read at query time; the resolver reloads a
-- subscriber on the journal rows of a status change, a renewal and the speed row
-- the enforcer writes when an expiry passes (dns_filter/journal_contract.json).
DROP VIEW dns_policy;
CREATE VIEW dns_policy AS
SELECT host(r.framedipaddress) AS address, s.username AS username,
       CASE WHEN s.status <> 'active' OR s.expires_at <= now() THEN 'expired'
            WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END AS categories,
       host(r.nasipaddress) AS nasipaddress
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.framedipaddress IS NOT NULL
UNION ALL
SELECT text(r.framedipv6prefix), s.username,
       CASE WHEN s.status <> 'active' OR s.expires_at <= now() THEN 'expired'
            WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END,
       host(r.nasipaddress)
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.framedipv6prefix IS NOT NULL
UNION ALL
SELECT text(r.delegatedipv6prefix), s.username,
       CASE WHEN s.status <> 'active' OR s.expires_at <= now() THEN 'expired'
            WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END,
       host(r.nasipaddress)
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id
 WHERE r.acctstoptime IS NULL AND r.delegatedipv6prefix IS NOT NULL;
DROP VIEW dns_session;
CREATE VIEW dns_session AS
SELECT r.radacctid AS radacctid, s.username AS username, host(r.nasipaddress) AS nasipaddress,
       CASE WHEN r.acctstoptime IS NULL THEN 1 ELSE 0 END AS open,
       host(r.framedipaddress) AS framedipaddress,
       text(r.framedipv6prefix) AS framedipv6prefix,
       text(r.delegatedipv6prefix) AS delegatedipv6prefix,
       CASE WHEN s.status <> 'active' OR s.expires_at <= now() THEN 'expired'
            WHEN p.enabled AND rs.parental_enabled THEN p.categories ELSE '' END AS categories
  FROM radacct r
  JOIN subscribers s ON s.username = r.username
  JOIN resellers rs ON rs.id = s.reseller_id
  LEFT JOIN parental_settings p ON p.subscriber_id = s.id;
