"""WiFi management of a subscriber's router through a TR-069 ACS.

acs.py is the interface (plain values, no portal imports), genieacs.py one
implementation over GenieACS's northbound HTTP API, datamodel.py the TR-098 /
TR-181 parameter paths, service.py the business rules (validation, rate limit,
audit) the web tab and CLI call.
"""
