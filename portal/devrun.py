"""`make run`: the web server, a Celery worker, one beat and the sandbox providers, together.

Everything runs on embedded defaults (SQLite and a file-system broker under var/). Ctrl-C stops
every process this started; each child runs in its own process group so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


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
        if not _port_free(settings.SANDBOX_HOST, settings.SANDBOX_PORT):
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
    if not _port_free(host, port):
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

    children: list[tuple[str, subprocess.Popen]] = []

    def stop(*_args):
        # A second Ctrl-C while stopping must not leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for _name, child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for name, command in processes:
            children.append((name, subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)))
            if name == "sandbox" and not _wait_for_port(settings.SANDBOX_HOST, settings.SANDBOX_PORT, 15):
                print("The sandbox providers did not start; see the messages above.", file=sys.stderr)
                stop()
                return 1
        if not _wait_for_port(host, port, 30):
            print("The web server did not start; see the messages above.", file=sys.stderr)
            stop()
            return 1
        print(
            f"\n  Voucher portal is running: http://{host}:{port}/\n"
            + (f"  Sandbox providers:         {settings.SANDBOX_URL}/\n" if sandbox_available else "")
            + "  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while True:
            for name, child in children:
                if child.poll() is not None:
                    print(
                        f"{name} stopped (exit code {child.returncode}); stopping the rest.", file=sys.stderr
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
