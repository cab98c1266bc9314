"""`make run`: the web server, a Celery worker, one beat and the sandbox providers, together.

Everything runs on embedded defaults (SQLite and a file-system broker under var/). Ctrl-C stops
every process this started; each child runs in its own process group so nothing is left behind.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

from portal.processes import ManagedProcess, ProcessError, port_free, stop_all

BASE_DIR = Path(__file__).resolve().parent.parent


def _interrupt(signum, frame):
    # `kill` of the launcher stops everything, exactly like Ctrl-C.
    raise KeyboardInterrupt


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings

    host = os.environ.get("PORTAL_HOST", "127.0.0.1")
    port = int(os.environ.get("PORTAL_PORT", "8000"))
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "portal"]
    # The file-system broker has no fan-out: no mingle, gossip or remote-control heartbeat.
    quiet_broker = ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    processes: list[tuple[str, list[str]]] = []

    sandbox_available = importlib.util.find_spec("sandbox") is not None
    if settings.SANDBOX_ENABLED and sandbox_available:
        if not port_free(settings.SANDBOX_PORT, settings.SANDBOX_HOST):
            print(f"Port {settings.SANDBOX_PORT} is taken; set SANDBOX_PORT to a free port.", file=sys.stderr)
            return 2
        processes.append(
            (
                "sandbox",
                [
                    python,
                    "-m",
                    "sandbox",
                    "--host",
                    settings.SANDBOX_HOST,
                    "--port",
                    str(settings.SANDBOX_PORT),
                ],
            )
        )
    if not port_free(port, host):
        print(
            f"Port {port} is taken; set PORTAL_PORT to a free port (e.g. PORTAL_PORT=8010 make run).",
            file=sys.stderr,
        )
        return 2
    processes += [
        ("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]),
        (
            "worker",
            [*celery, "worker", "-l", "INFO", "--pool", "threads", "--concurrency", "4", *quiet_broker],
        ),
        ("beat", [*celery, "beat", "-l", "INFO", "-s", str(Path(settings.CELERY_BEAT_SCHEDULE_FILENAME))]),
    ]

    children: list[ManagedProcess] = []

    def stop(*_args):
        # A second Ctrl-C while stopping must not leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(children, timeout=10)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        # What each child must answer on before the next starts (the sandbox before the portal
        # that calls it) or before "running" is printed (the web server).
        ready = {"sandbox": (settings.SANDBOX_HOST, settings.SANDBOX_PORT, 15), "web": (host, port, 30)}
        for name, command in processes:
            children.append(ManagedProcess(name, command, cwd=BASE_DIR).start())
            if name in ready:
                ready_host, ready_port, timeout = ready[name]
                try:
                    children[-1].wait_for_port(ready_port, ready_host, timeout=timeout)
                except ProcessError:
                    what = "The sandbox providers" if name == "sandbox" else "The web server"
                    print(f"{what} did not start; see the messages above.", file=sys.stderr)
                    stop()
                    return 1
        print(
            f"\n  Voucher portal is running: http://{host}:{port}/\n"
            + (f"  Sandbox providers:         {settings.SANDBOX_URL}/\n" if sandbox_available else "")
            + "  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while True:
            for child in children:
                if not child.running:
                    print(
                        f"{child.name} stopped (exit code {child.returncode}); stopping the rest.",
                        file=sys.stderr,
                    )
                    stop()
                    return child.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
