"""Container health probe: exit 0 when the URL answers 2xx within the timeout, else 1.

A script rather than ``python -c "..."`` in docker-compose.yml: podman-compose re-quotes the
arguments of an exec-form health check through a shell, which mangles quotes and spaces.
"""

import sys
import urllib.request

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/healthz"
try:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (a fixed local URL)
        sys.exit(0 if 200 <= response.status < 300 else 1)
except Exception as exc:  # any failure is "unhealthy"; say why for `docker inspect`
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
