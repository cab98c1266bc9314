"""Local simulators of the two voucher providers (LINA token API and Allsafe Redemption API).

They speak the wire contract of ``providers.md`` (and WIRE.md), including its [assumed] parts,
switchable per account/campaign the same way the portal's campaign settings are. The state is
held in memory by :class:`sandbox.state.Store`, separate from the portal's database; faults are
injected per provider and operation. Never enabled in production (see :mod:`sandbox.guard`).

Run it alone: ``python -m sandbox --host 127.0.0.1 --port 8001``.
"""
