"""Per-subscriber filtering DNS resolver (a mechanism: plain settings in, DNS out).

Entry point: `dns_filter.server.run(DnsSettings(...))`.
"""
