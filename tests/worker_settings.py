"""Settings of a Celery worker process that a test starts (DJANGO_SETTINGS_MODULE=tests.worker_settings).

The portal's own settings, plus: the worker imports tests.sales.recording_provider, which puts a
provider stand-in into the same seam the ``fake_provider`` fixture uses (the fake itself lives in
the test process, which a worker process cannot reach); short bulk-sale leases and a short broker
visibility timeout, so a killed worker's batch is taken over within seconds instead of minutes.
"""

import os

from portal.settings import *  # noqa: F403

CELERY_IMPORTS = ["tests.sales.recording_provider"]
SALES_BULK_LEASE_SECONDS = int(os.environ.get("TEST_SALES_LEASE_SECONDS", "3"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("TEST_VISIBILITY_TIMEOUT", "6")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
