"""The real-worker fixture itself: a worker on Redis comes up, answers, and can be killed."""

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_worker_starts_answers_and_can_be_killed_and_restarted(celery_worker_process):
    from portal.celery import app

    worker = celery_worker_process()
    assert app.control.ping(timeout=5.0), worker.output()
    worker.kill()
    worker.start()
    assert app.control.ping(timeout=5.0), worker.output()
