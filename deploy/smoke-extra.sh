#!/usr/bin/env bash
# The product's own checks of the compose deployment, on top of the shared container smoke.
#
#   deploy/smoke-extra.sh SRC_DIR PROJECT PORT
#
# Runs against the stack ../shared/tools/container-smoke/run left up with SMOKE_KEEP=1 (SRC_DIR:
# its clone with the generated .env; PROJECT: its podman-compose project name; PORT: the host port
# of web). .ci/container calls it and tears the stack down afterwards. It checks:
#   - the README's deployment commands (the block between the deploy-commands markers) run as
#     written, with `docker compose` spelt `podman-compose -p PROJECT`: up --build on the running
#     stack, the one-shot migrate once more (idempotent), createsuperuser --noinput;
#   - the login page links hashed static files (the manifest storage is in use);
#   - the superuser and one user per role (Cashier, Marketing manager, Campaign admin) log in over
#     the proxy's https header and their pages render, and a cashier is refused the audit page;
#   - the health check of every service that has one passes, run as podman runs it;
#   - web, worker and beat run as the non-root user with restart: unless-stopped, exactly one beat;
#   - beat sent a scheduled task and the worker ran it (the desk reconcile sweep, every 30 s);
#   - Redis stopped and started again: the worker runs tasks again within 120 s;
#   - every line web, worker and beat logged is one JSON object (time, level, logger, message).
# Exit 0 only when every check held; the last line says which failed.
set -uo pipefail
# Logs are piped into grep -c, never grep -q: -q stops reading at the first match, podman logs
# then dies of SIGPIPE and pipefail turns a found line into a failed check.
SRC=$(cd "$1" && pwd)
P=$2
PORT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
BASE="http://127.0.0.1:$PORT"
LOG=$(mktemp)
t0=$SECONDS
cd "$SRC"

phase() { echo "== [extra $((SECONDS - t0)) s] $*"; }
failed=()
check() { local name=$1; shift; if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; failed+=("$name"); fi; }
name() { podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}}' | grep -E "^${P}_$1_[0-9]+$" | head -n1; }
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }

# podman-compose 1.0.3 always exits 0; a one-off container's own code is its "exit code: N" line.
compose() {
  local out code
  out=$(podman-compose -p "$P" "$@" </dev/null 2>&1)
  printf '%s\n' "$out" >>"$LOG"
  [ "$1" = run ] || return 0
  code=$(printf '%s\n' "$out" | grep -oE '^exit code: [0-9]+' | tail -n1 | awk '{print $3}')
  [ "${code:-1}" = 0 ] || { printf '%s\n' "$out" | tail -n 15; return 1; }
}

env_from_example() {
  # The container tool did this step: .env is .env.example with the REQUIRED values filled in.
  [ -s .env ] || return 1
  local key
  for key in $(grep -oE '^[A-Z][A-Z0-9_]+=' .env.example | tr -d =); do
    grep -qE "^$key=" .env || { echo "  .env lacks $key"; return 1; }
  done
}

phase "README deployment commands"
block=$(awk '/<!-- deploy-commands:begin/ {f = 1; next} /<!-- deploy-commands:end/ {f = 0} f' README.md |
  grep -vE '^[[:space:]]*(```|#|$)' || true)
check "README has a deploy-commands block" test -n "$block"
ADMIN_PASSWORD=$(secret)
export ADMIN_PASSWORD
while IFS= read -r line; do
  [ -n "$line" ] || continue
  cmd=$(printf '%s' "${line%%#*}" | sed -E 's/[[:space:]]+$//')
  case "$cmd" in
    "cp .env.example .env") check "README: $cmd (done by the container tool, secrets filled in)" env_from_example ;;
    "read -rs ADMIN_PASSWORD") echo "ok: README: $cmd (this script chose a random one)" ;;
    "docker compose "*)
      eval "set -- ${cmd#docker compose }"
      check "README: $cmd" compose "$@"
      ;;
    *) check "README command known to this script: $cmd" false ;;
  esac
done <<<"$block"
check "migrate is idempotent (README run: no migrations to apply)" grep -q "No migrations to apply" "$LOG"

web=$(name web)
worker=$(name worker)
beat=$(name beat)
redis=$(name redis)
for _ in $(seq 60); do curl -fs -o /dev/null "$BASE/healthz" && break; sleep 1; done

phase "hashed static files"
curl -s -H 'X-Forwarded-Proto: https' "$BASE/login/" >"$LOG.login"
check "login page links a hashed stylesheet (/static/...<hash>.css)" \
  grep -qE '/static/[^"]+\.[0-9a-f]{12}\.css' "$LOG.login"

phase "logins and one page per role"
ROLE_PASSWORD=$(secret)
podman exec -e SMOKE_PASSWORD="$ROLE_PASSWORD" "$web" python manage.py shell -c '
import os
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
for username, role in [("smoke-cashier", "Cashier"), ("smoke-marketing", "Marketing manager"),
                       ("smoke-campaignadmin", "Campaign admin")]:
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(os.environ["SMOKE_PASSWORD"])
    user.is_staff = role == "Campaign admin"
    user.save()
    user.groups.set([Group.objects.get(name=role)])
print("role users ready")
' >>"$LOG" 2>&1
check "one user per role created in the web container" grep -q "role users ready" "$LOG"
pages() { SMOKE_PASSWORD=$1 python3 "$HERE/smoke_pages.py" "$BASE" "${@:2}"; }
check "superuser (README createsuperuser) logs in; home and admin render" \
  pages "$ADMIN_PASSWORD" admin "/=<title>" "/admin/=Voucher portal administration"
check "Cashier: desk renders, audit refused" \
  pages "$ROLE_PASSWORD" smoke-cashier "/desk/=<h1>Desk</h1>" "/audit/=403"
check "Marketing manager: sales render" \
  pages "$ROLE_PASSWORD" smoke-marketing "/sales/=<h1>Sales</h1>"
check "Campaign admin: provider health and audit render" \
  pages "$ROLE_PASSWORD" smoke-campaignadmin "/providers/health/=<h1>Provider health</h1>" "/audit/"

phase "health checks, users, restart policies, one beat"
for svc in postgres redis web worker; do
  c=$(name "$svc")
  check "$svc health check passes (podman healthcheck run)" podman healthcheck run "$c"
done
for c in "$web" "$worker" "$beat"; do
  check "$c runs as portal" test "$(podman exec "$c" id -un)" = portal
  check "$c restart: unless-stopped" test "$(podman inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$c")" = unless-stopped
done
check "exactly one beat container" test "$(podman ps -a --filter "label=io.podman.compose.project=$P" \
  --format '{{.Names}}' | grep -cE "^${P}_beat_[0-9]+$")" = 1

phase "beat -> worker"
task_ran_since() {
  # A desk reconcile sweep sent by beat and run by the worker, logged after $1 (RFC 3339).
  local since=$1 _
  for _ in $(seq "$2"); do
    podman logs --since "$since" "$(name worker)" 2>&1 |
      grep -c 'operations_reconcile_due_task\[[^]]*\] succeeded' >/dev/null && return 0
    sleep 2
  done
  return 1
}
beat_sent() {
  local _
  for _ in $(seq 45); do
    podman logs "$beat" 2>&1 | grep -c 'Sending due task desk-reconcile-unknown' >/dev/null && return 0
    sleep 2
  done
  return 1
}
check "beat sent the desk reconcile sweep" beat_sent
check "the worker ran it" task_ran_since 2000-01-01T00:00:00Z 45

phase "Redis stopped and started again"
restarts_before=$(podman inspect -f '{{.RestartCount}}' "$worker")
podman stop -t 5 "$redis" >/dev/null
sleep 5
back=$(date -u +%Y-%m-%dT%H:%M:%SZ)
podman start "$redis" >/dev/null
for _ in $(seq 30); do podman healthcheck run "$redis" >/dev/null 2>&1 && break; sleep 1; done
check "the worker runs tasks again within 120 s" task_ran_since "$back" 60
check "the worker is running" test "$(podman inspect -f '{{.State.Running}}' "$worker")" = true
echo "   (worker restarts during the outage: $(($(podman inspect -f '{{.RestartCount}}' "$worker") - restarts_before)); 0 means it reconnected by itself)"
ready_again() {
  local _
  for _ in $(seq 30); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ] && return 0
    sleep 1
  done
  return 1
}
check "/readyz 200 again" ready_again

phase "log format"
json_logs() { podman logs "$1" 2>&1 | python3 "$HERE/check_json_logs.py"; }
for c in "$web" "$worker" "$beat"; do
  check "$c logs JSON lines only" json_logs "$c"
done
access_logged() { podman logs "$web" 2>&1 | grep -c '"logger": "gunicorn.access"' >/dev/null; }
check "gunicorn access lines are in the same format" access_logged

rm -f "$LOG" "$LOG.login"
phase "done"
if [ ${#failed[@]} -eq 0 ]; then echo "deployment checks: all held"; else echo "deployment checks: ${#failed[@]} failed; first: ${failed[0]}"; exit 1; fi
