"""Celery tasks: thin shells that take ids and call one service each (one module per area).

Celery's autodiscovery imports ``vouchers.tasks``; importing the area modules here registers them.
"""

from . import accounts, desk, sales, stock  # noqa: F401
