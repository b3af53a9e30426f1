"""The notifier daemon: journal events and expiry dates -> messages to subscribers.

A layer beside the enforcer and the web: it may use core, speed and store, and
nothing imports it but the CLI (pyproject's import-linter contracts).
"""
