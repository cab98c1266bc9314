"""The Celery application, configured from Django settings (``CELERY_*``)."""

import logging.config
import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _use_the_portals_logging(**kwargs):
    """Worker and beat log as the web does (settings.LOGGING: JSON lines on stdout, secrets
    redacted) instead of Celery's own format. Connecting here stops Celery configuring logging
    and redirecting stdout; its ``-l`` level gives way to LOG_LEVEL."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@app.on_after_configure.connect
def _install_beat_schedule(sender, **kwargs):
    from portal.beat_schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = {**BEAT_SCHEDULE, **(sender.conf.beat_schedule or {})}


@app.on_after_finalize.connect
def _prepare_filesystem_broker(sender, **kwargs):
    """kombu's file-system transport needs its folders to exist before anyone publishes."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
