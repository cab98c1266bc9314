"""portal/processes.py: the one helper that starts, awaits and stops child processes."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal import processes
from portal.processes import ManagedProcess, ProcessError, free_port, port_free, port_open, stop_all


def _server(port: int, tmp_path) -> ManagedProcess:
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return ManagedProcess("http.server", command, cwd=tmp_path, log=tmp_path / "server.log")


def test_a_server_is_started_awaited_on_its_port_and_stopped(tmp_path):
    port = free_port()
    assert port_free(port) and not port_open(port)
    server = _server(port, tmp_path).start().wait_for_port(port, timeout=20)
    assert server.running and port_open(port)
    assert server.stop(timeout=10) is not None
    assert not server.running and not port_open(port)


def test_several_ports_from_a_start_are_distinct_and_skip_taken_ones():
    taken = {40100}
    first, second = free_port(start=40100, taken=taken), free_port(start=40100, taken=taken)
    assert len({40100, first, second}) == 3 and {first, second} <= taken


def test_a_child_that_exits_while_awaited_fails_at_once_with_its_log(tmp_path):
    command = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    child = ManagedProcess("short-lived", command, log=tmp_path / "child.log").start()
    started = time.monotonic()
    with pytest.raises(ProcessError, match="exited early") as failure:
        child.wait_for_port(free_port(), timeout=20)
    assert time.monotonic() - started < 10 and "boom" in str(failure.value)


def test_stop_ends_the_whole_process_group_and_kill_does_not_wait(tmp_path):
    # The child starts a grandchild (as gunicorn or Celery start workers); stopping takes both.
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('up', flush=True); time.sleep(60)"
    parent = ManagedProcess("parent", [sys.executable, "-c", script], log=tmp_path / "p.log").start()
    parent.wait_for_log(b"up", timeout=20)
    group = subprocess.run(["pgrep", "-g", str(parent.pid)], capture_output=True, text=True).stdout.split()
    assert len(group) == 2
    stop_all([parent], timeout=5)
    time.sleep(0.3)
    # Whatever is left of the group is a zombie waiting for PID 1 to reap it, never a live process.
    states = subprocess.run(
        ["ps", "-o", "stat=", "-g", str(parent.pid)], capture_output=True, text=True
    ).stdout
    assert all(state.startswith("Z") for state in states.split())
    other = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]).start()
    other.kill()
    assert other.returncode == -9


def test_captured_output_comes_back_on_communicate():
    child = ManagedProcess("echo", [sys.executable, "-c", "print('hello')"], capture=True).start()
    child.popen.wait(timeout=10)  # communicate() stops a child still running; this one ends by itself
    out, _err = child.communicate(timeout=10)
    assert out.strip() == "hello"


def test_it_imports_nothing_but_the_standard_library():
    """The launchers use it before Django is set up (and drills/benches outside Django)."""
    tree = ast.parse(Path(processes.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
