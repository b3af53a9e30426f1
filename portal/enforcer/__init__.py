"""The enforcer daemon (`ispedge enforcer`): follows the change journal and makes
the network match the database -- local shaper classes and NAS sessions (CoA).

rules.py: the plain rules (desired speed, idempotence, backoff); facts.py:
reading them in batches; daemon.py: the loops; local.py: the shaper on a
worker thread; cli.py: `ispedge enforcer` and `ispedge enforcer status`.
"""
