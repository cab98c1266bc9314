"""The house rules that a machine can check: lint, migrations, demo data, compose file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_migrations_are_committed():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_seed_demo_runs_twice_and_each_role_can_log_in(client):
    from vouchers.models import Campaign

    call_command("seed_demo", "--quiet-passwords")
    call_command("seed_demo", "--quiet-passwords")
    assert Campaign.objects.filter(slug__in=["demo-lina", "demo-allsafe"]).count() == 2
    from vouchers.management.commands.seed_demo import DEMO_USERS

    for username, password, _role, _slugs in DEMO_USERS:
        response = client.post("/login/", {"username": username, "password": password})
        assert response.status_code == 302, username
        client.logout()


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_file_parses(tmp_path):
    compose = _compose_command()
    if compose is None:
        pytest.skip("no docker compose client is installed")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    result = subprocess.run(
        [*compose, "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    services = result.stdout
    for name in ("postgres:", "redis:", "migrate:", "web:", "worker:", "beat:"):
        assert name in services


def test_env_example_lists_every_variable_the_settings_read():
    import re

    settings_source = (ROOT / "portal" / "settings.py").read_text()
    read = set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", settings_source))
    read |= set(re.findall(r"""_env\(\s*env\.\w+,\s*["']([A-Z][A-Z0-9_]+)["']""", settings_source))
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read, "the pattern found no variables in settings.py"
    missing = sorted(read - listed)
    assert not missing, f".env.example lacks: {missing}"


def test_compose_health_checks_are_exec_form_with_plain_arguments():
    """podman-compose joins an exec-form test through ``/bin/sh -c`` with its own quoting, and a
    CMD-SHELL string is quoted differently by each tool: plain words are the same under both."""
    import json

    tests = re.findall(r"^\s*test:\s*(.+)$", (ROOT / "docker-compose.yml").read_text(), re.MULTILINE)
    assert len(tests) >= 4, tests  # postgres, redis, web, worker
    for raw in tests:
        words = json.loads(raw)
        assert words[0] == "CMD", raw
        for word in words[1:]:
            assert re.fullmatch(r"[A-Za-z0-9_./:=-]+", word), f"{word!r} would be re-quoted by a shell"


def test_compose_restarts_every_long_running_service_and_runs_one_beat():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert compose.count("restart: unless-stopped") >= 3  # shared portal block, postgres, redis
    assert 'restart: "no"' in compose.split("migrate:")[1].split("web:")[0]
    beat = compose.split("\n  beat:")[1].split("\nvolumes:")[0]
    assert "replicas: 1" in beat


def test_dockerfile_collects_static_files_for_production_without_baked_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DJANGO_ENV=development" not in dockerfile
    assert "DJANGO_ENV=production" in dockerfile
    assert "collectstatic" in dockerfile and "staticfiles.json" in dockerfile
    # Secrets are generated inside the RUN that needs them; no literal key or secret in a layer.
    assert not re.search(r"(SECRET_KEY|ENCRYPTION_KEYS)=[A-Za-z0-9_-]{20,}", dockerfile)
    assert re.search(r"^USER portal$", dockerfile, re.MULTILINE)
