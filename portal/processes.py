"""Starting, waiting for and stopping child processes: one helper for `make run`, drills, benches
and tests.

Every child runs in its own process group (``start_new_session``), so stopping it stops what it
started too (Celery's pool, gunicorn's workers) and nothing else: only the pid this module
started is ever signalled. No Django import here: the launchers use it before Django is set up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ProcessError(RuntimeError):
    """A child did not come up in time, or exited while it was awaited."""


# --- ports ------------------------------------------------------------------------------------
def port_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``host:port`` can be bound now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, *, start: int | None = None, taken: set[int] | None = None) -> int:
    """A port nobody listens on. Without ``start`` the kernel picks one; with it, the first free
    port from ``start`` on that is not in ``taken`` (which it is added to, for several at once)."""
    if start is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if taken is not None:
            taken.add(port)
        return port
    taken = taken if taken is not None else set()
    for port in range(start, start + 200):
        if port not in taken and port_free(port, host):
            taken.add(port)
            return port
    raise ProcessError(f"no free port on {host} from {start}")


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def closed_port_url(host: str = LOOPBACK) -> str:
    """``http://host:port`` where nothing listens (a connection there is refused, never sent)."""
    return f"http://{host}:{free_port(host)}"


# --- waiting ----------------------------------------------------------------------------------
def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    process: ManagedProcess | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll ``predicate`` until it is true; exceptions listed in ``ignore`` count as "not yet".
    Raises ProcessError after ``timeout`` seconds, or at once when ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(*ignore):
            if predicate():
                return
        if process is not None and not process.running:
            raise ProcessError(
                f"{what}: the process exited early (code {process.returncode})\n{process.tail()}"
            )
        if time.monotonic() >= deadline:
            tail = f"\n{process.tail()}" if process is not None else ""
            raise ProcessError(f"{what} did not come up within {timeout:.0f} s{tail}")
        time.sleep(interval)


# --- processes --------------------------------------------------------------------------------
class ManagedProcess:
    """One child process in its own group.

    ``log`` sends stdout and stderr to that file (appended); ``capture=True`` keeps them in pipes
    for :meth:`communicate`; otherwise they go where this process's go.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        log: str | Path | None = None,
        capture: bool = False,
    ):
        self.name = name
        self.command = [str(part) for part in command]
        self.cwd = cwd
        self.env = env
        self.log_path = Path(log) if log else None
        self.capture = capture
        self.popen: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        if self.log_path is not None:
            with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
                self.popen = self._popen(stdout=log, stderr=subprocess.STDOUT)
        elif self.capture:
            self.popen = self._popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            self.popen = self._popen()
        return self

    def _popen(self, **streams) -> subprocess.Popen:
        return subprocess.Popen(self.command, cwd=self.cwd, env=self.env, start_new_session=True, **streams)

    # --- state ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def tail(self, chars: int = 4000) -> str:
        """The end of the log file (empty without one)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-chars:].decode(errors="replace")

    # --- waiting ----------------------------------------------------------------------------
    def wait_for_port(self, port: int, host: str = LOOPBACK, timeout: float = 30) -> ManagedProcess:
        wait_until(lambda: port_open(port, host), timeout=timeout, what=self.name, process=self)
        return self

    def wait_for_log(self, marker: bytes, timeout: float = 30) -> ManagedProcess:
        """Until ``marker`` appears in the log file (e.g. Celery's ``ready.``)."""
        wait_until(
            lambda: self.log_path.exists() and marker in self.log_path.read_bytes(),
            timeout=timeout,
            what=self.name,
            process=self,
        )
        return self

    def wait_until(
        self,
        predicate: Callable[[], object],
        timeout: float = 30,
        ignore: tuple[type[BaseException], ...] = (),
        what: str = "",
    ) -> ManagedProcess:
        wait_until(predicate, timeout=timeout, what=what or self.name, process=self, ignore=ignore)
        return self

    # --- stopping ---------------------------------------------------------------------------
    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM to the group, SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash or an OOM kill would."""
        if self.running:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def communicate(self, timeout: float = 10) -> tuple[str, str]:
        """Stop (SIGTERM) and return what a ``capture=True`` process wrote."""
        if self.running:
            self._signal_group(signal.SIGTERM)
        try:
            return self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            return self.popen.communicate(timeout=10)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_all(processes: Sequence[ManagedProcess], timeout: float = 10) -> None:
    """SIGTERM every group first, then wait for each within one shared deadline (SIGKILL after)."""
    for process in processes:
        if process.running:
            process._signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        process.stop(timeout=max(0.1, deadline - time.monotonic()))


def celery_worker_command(*, pool: str, concurrency: int, name: str, extra: Sequence[str] = ()) -> list[str]:
    """The Celery worker the tests and benches start: this interpreter, a unique node name (so
    several can share one broker) and no mingle/gossip chatter between them."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "portal",
        "worker",
        "-l",
        "INFO",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"{name}-{uuid.uuid4().hex[:8]}@%h",
        *extra,
    ]
