"""Settings of a Celery worker process that a test starts (DJANGO_SETTINGS_MODULE=tests.support.worker_settings).

The portal's own settings, plus: the worker imports tests.support.recording_provider, which puts a
provider stand-in into the same seam the ``fake_provider`` fixture uses (the fake itself lives in
the test process, which a worker process cannot reach), and short bulk-sale leases so a killed
worker's batch counts as stalled after seconds instead of minutes.

The broker's visibility timeout is left alone on purpose: kombu restores unacked messages under a
Redis mutex that a SIGKILL can leave held for five minutes, so a test that waited for redelivery
would be flaky. The test resumes the stalled batch the way a person does (the Resume button).
"""

import os

from portal.settings import *  # noqa: F403

CELERY_IMPORTS = ["tests.support.recording_provider"]
SALES_BULK_LEASE_SECONDS = int(os.environ.get("TEST_SALES_LEASE_SECONDS", "3"))
