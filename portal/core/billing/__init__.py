"""Billing rules as plain functions: proration, tax, quantities, invoice numbers.

Prices are tax-inclusive everywhere: the price a subscriber sees (plan price,
price per GB, a prorated amount) is what leaves the wallet, and an invoice
shows how much of it is tax (`tax.split_inclusive`).
"""
