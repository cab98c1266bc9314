"""Container health probe: exit 0 when healthy, else 1 (with the reason on stderr).

    python deploy/healthcheck.py http://127.0.0.1:8000/healthz   # web: the URL answers 2xx
    python deploy/healthcheck.py worker                          # this Celery worker answers a ping

A script rather than ``python -c "..."`` in docker-compose.yml: podman-compose re-quotes the
arguments of an exec-form health check through a shell, which mangles quotes and spaces. The
worker probe pings this container's own node by name, so it returns as soon as that one answers
(``celery inspect ping`` waits out its whole timeout) and a scaled worker judges only itself.
"""

import socket
import sys
import urllib.request


def web(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (a fixed local URL)
        return 200 <= response.status < 300


def worker() -> bool:
    from portal.celery import app

    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=5)
    return any(node in reply for reply in replies)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/healthz"
    try:
        healthy = worker() if target == "worker" else web(target)
    except Exception as exc:  # any failure is "unhealthy"; say why for `docker inspect`
        print(f"unhealthy: {exc}", file=sys.stderr)
        sys.exit(1)
    if not healthy:
        print(f"unhealthy: {target} did not answer as expected", file=sys.stderr)
    sys.exit(0 if healthy else 1)
