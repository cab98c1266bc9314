"""One settings module for every environment, driven by environment variables.

Development (the default) runs on embedded defaults: SQLite and a file-system broker under
``var/``, a file-based cache shared by web and worker processes, sandbox providers.
Production (``DJANGO_ENV=production``) refuses to start unless every required variable is set
and sensible; ``manage.py check --deploy --fail-level WARNING`` is clean there (tested).
Every variable is listed with a comment in ``.env.example``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from portal import logformat

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
# A .env file beside manage.py is read when present; real environment variables win.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _env(reader, name, **kwargs):
    """Read one variable; a malformed value names the variable and what it expects."""
    try:
        return reader(name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {exc}") from exc


DJANGO_ENV = env.str("DJANGO_ENV", default="development").strip().lower()
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"Environment variable DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}."
    )
PRODUCTION = DJANGO_ENV == "production"

# Development-only values. Production refuses to start with any of them.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production-3f1c9a7e5b2d"  # noqa: S105
DEV_FIELD_ENCRYPTION_KEY = "mHmWrZbQ0Rkq3ZAo2eUwiN8-ovC_ldkd7kWfvBHmeOo="

if PRODUCTION:
    _required = [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "FIELD_ENCRYPTION_KEYS",
        "DJANGO_ALLOWED_HOSTS",
        "CELERY_BROKER_URL",
    ]
    _missing = [name for name in _required if not env.str(name, default="").strip()]
    if _missing:
        raise ImproperlyConfigured(
            "Production mode (DJANGO_ENV=production) needs these environment variables: "
            + ", ".join(_missing)
            + ". See .env.example for what each expects."
        )

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = _env(env.bool, "DJANGO_DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = _env(
    env.list, "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = _env(env.list, "DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off in production mode.")
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be a random value of at least 50 characters in production "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )

# --- Applications ---------------------------------------------------------------------------

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # Django's widget templates, for the form renderer below
    "django_tables2",
    "django_filters",
    "axes",
    "vouchers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is explicitly marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Benchmarks only (bench/bench_desk.py): a Server-Timing header saying where a request's time
# went (SQL, templates, provider calls). Off unless PORTAL_SERVER_TIMING=1; see portal/server_timing.py.
if env.str("PORTAL_SERVER_TIMING", default="") == "1":
    MIDDLEWARE = ["portal.server_timing.ServerTimingMiddleware", *MIDDLEWARE]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "vouchers.access.context_processors.navigation",
            ],
        },
    },
]

# One template draws every form field (label, widget, help, errors): vouchers/forms/rendering.py.
FORM_RENDERER = "vouchers.forms.rendering.PortalFormRenderer"

# --- Data stores ----------------------------------------------------------------------------

DATABASES = {
    "default": _env(env.db_url, "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", _env(env.int, "DATABASE_CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is for the one-machine demo; a busy timeout lets web and worker share it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, reusing one redis-py client per pool (portal/cache.py says why).
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
        }
    }
else:
    # Shared by every process on this machine (LINA session hashes, cool-downs), unlike locmem.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured(
        "Production mode needs REDIS_URL: provider session hashes and cool-downs must be shared "
        "by every web and worker process."
    )

# --- Celery ---------------------------------------------------------------------------------

# Without a broker URL: the Redis of REDIS_URL when there is one, else a broker that needs no server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    # kombu's file-system transport: a broker that needs no server, for `make run` only.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (control) exchanges; kombu's default is ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu waits forever on a Redis host that drops packets instead of refusing: a web request
    # that enqueues work would hang. Bounded here; the worker's BRPOP answers every second, so
    # the socket timeout never cuts a healthy wait short.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": _env(env.float, "CELERY_BROKER_CONNECT_TIMEOUT", default=2.0),
        "socket_timeout": _env(env.float, "CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
    }
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ALWAYS_EAGER = _env(env.bool, "CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage is waited out, however long, instead of giving up after 100 tries.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat entries are declared in portal/beat_schedule.py; see portal/celery.py.
CELERY_BEAT_SCHEDULE: dict = {}

# --- Authentication and security ------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out username + IP before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "vouchers:home"
LOGOUT_REDIRECT_URL = "login"

# Sessions read from the shared cache (Redis in production) and written through to the
# database, so a till's scan costs no session query and a cache restart logs nobody out.
SESSION_ENGINE = "portal.sessions"
# About one shift; the session ends with the browser as well.
SESSION_COOKIE_AGE = _env(env.int, "SESSION_COOKIE_AGE", default=int(timedelta(hours=9).total_seconds()))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Login throttling (django-axes): lock a username *from one address* after repeated failures,
# so one attacker cannot lock a cashier out from every till. A successful login resets the count.
AXES_FAILURE_LIMIT = _env(env.int, "AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=_env(env.int, "AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Number of reverse proxies in front of gunicorn that append to X-Forwarded-For. 0: use the
# socket address. Set it to exactly the number of trusted proxies, or clients can forge their IP.
AXES_IPWARE_PROXY_COUNT = _env(env.int, "AXES_PROXY_COUNT", default=0)
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
# Password reset by e-mail: links valid this long (Django's default is 3 days), and requests
# counted per typed address and per client address (same IP rules as axes) in the shared cache.
PASSWORD_RESET_TIMEOUT = _env(env.int, "PASSWORD_RESET_TIMEOUT_SECONDS", default=3600)
PASSWORD_RESET_LIMIT_PER_EMAIL = _env(env.int, "PASSWORD_RESET_LIMIT_PER_EMAIL", default=3)
PASSWORD_RESET_LIMIT_PER_IP = _env(env.int, "PASSWORD_RESET_LIMIT_PER_IP", default=10)
PASSWORD_RESET_WINDOW_SECONDS = _env(env.int, "PASSWORD_RESET_WINDOW_SECONDS", default=3600)

# Content Security Policy: everything from our own origin, no inline scripts anywhere.
# data: images carry the providers' QR codes (base64 PNG).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    LANGUAGE_COOKIE_HTTPONLY = True
    SECURE_SSL_REDIRECT = _env(env.bool, "DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = _env(env.int, "DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env(env.bool, "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = _env(env.bool, "DJANGO_SECURE_HSTS_PRELOAD", default=True)
    # The TLS-terminating proxy in front of gunicorn tells us the original scheme.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The health endpoints are probed over plain HTTP from inside the deployment.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Field encryption -----------------------------------------------------------------------

FIELD_ENCRYPTION_KEYS = _env(env.list, "FIELD_ENCRYPTION_KEYS", default=[DEV_FIELD_ENCRYPTION_KEY])
if PRODUCTION and DEV_FIELD_ENCRYPTION_KEY in FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must not contain the development key in production. Generate one with "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
    )

# --- Providers ------------------------------------------------------------------------------

# The sandbox simulators (sandbox/) are for development, demos and tests only.
SANDBOX_ENABLED = _env(env.bool, "SANDBOX_ENABLED", default=not PRODUCTION)
if PRODUCTION and SANDBOX_ENABLED:
    raise ImproperlyConfigured("SANDBOX_ENABLED cannot be switched on in production mode.")
SANDBOX_HOST = env.str("SANDBOX_HOST", default="127.0.0.1")
SANDBOX_PORT = _env(env.int, "SANDBOX_PORT", default=8001)
SANDBOX_URL = f"http://{SANDBOX_HOST}:{SANDBOX_PORT}"

# Stored credentials are only ever sent to these endpoints (vouchers/providers/endpoints.py):
# entries are host (https, port 443), host:port or scheme://host[:port], port * = any. Production
# defaults to the hosts providers.md documents and allows https only (plain http to loopback
# only, for the drills' sandbox); development adds loopback on any port and SANDBOX_URL for the
# sandbox and the test servers on free ports, never another machine.
_PROVIDER_HOSTS = {
    "lina": ["api.lina.de", "login.amadeus360.de"],
    "allsafe": ["allsafe-api.poweredbytechsys.co.za"],
}
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_LOOPBACK = [f"{s}://{h}:*" for s in ("http", "https") for h in _LOOPBACK_HOSTS]
PROVIDER_ALLOWED_HOSTS: dict[str, list[str]] = {}
from vouchers.providers.endpoints import normalise_entry, setting_name  # noqa: E402 (pure, no models)

for _provider, _hosts in _PROVIDER_HOSTS.items():
    _name = setting_name(_provider)
    _entries = _env(env.list, _name, default=_hosts + ([] if PRODUCTION else [*_LOOPBACK, SANDBOX_URL]))
    try:
        PROVIDER_ALLOWED_HOSTS[_provider] = list(
            dict.fromkeys(normalise_entry(e) for e in _entries if e.strip())
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"Environment variable {_name} is malformed: {exc}") from exc
    _plain = [e for e in PROVIDER_ALLOWED_HOSTS[_provider] if e.startswith("http://")]
    if PRODUCTION and any(not e.startswith(tuple(f"http://{h}:" for h in _LOOPBACK_HOSTS)) for e in _plain):
        # Plain http only where it never leaves the machine (the drills' local sandbox).
        raise ImproperlyConfigured(f"{_name} may only list https endpoints (or loopback) in production mode.")

# Defaults for new campaigns; each campaign may override them.
PROVIDER_CONNECT_TIMEOUT = _env(env.float, "PROVIDER_CONNECT_TIMEOUT", default=3.05)
PROVIDER_READ_TIMEOUT = _env(env.float, "PROVIDER_READ_TIMEOUT", default=15.0)
# Reads (ping, checkcode) are retried this many times on transport errors and
# 5xx, with exponential backoff from this base plus jitter. Money-moving calls never are.
PROVIDER_READ_RETRIES = _env(env.int, "PROVIDER_READ_RETRIES", default=2)
PROVIDER_RETRY_BACKOFF_SECONDS = _env(env.float, "PROVIDER_RETRY_BACKOFF_SECONDS", default=0.3)
# Connections each process keeps open per provider host (raised to STOCK_POLL_CONCURRENCY if
# lower, so the poll's threads never open throw-away sockets: "Connection pool is full").
PROVIDER_HTTP_POOL_SIZE = _env(env.int, "PROVIDER_HTTP_POOL_SIZE", default=32)
# The longest a cashier waits for a LINA check (checkcode), over all its attempts: a hung check
# ends with "LINA did not answer; nothing was changed" instead of a minute of silence at the till.
# Redeems keep the campaign's read timeout and the unknown-outcome path.
LINA_CHECK_READ_TIMEOUT = _env(env.float, "LINA_CHECK_READ_TIMEOUT", default=5.0)
# After LINA answers DENIED (too many failed calls) no process calls that campaign for this long:
# every call during LINA's lock-out would extend it (providers.md). Stored in the shared cache.
LINA_DENIED_COOLDOWN_SECONDS = _env(env.int, "LINA_DENIED_COOLDOWN_SECONDS", default=300)
# LINA counts failed calls per calling address, so every till of a shop shares one budget: the
# portal allows at most this many failed calls per LINA account (base host + user name, across
# all tills, campaigns and processes) in this many seconds, and pauses calls after that. Keep it
# below LINA's own threshold, which is not public.
LINA_FAILED_CALL_LIMIT = _env(env.int, "LINA_FAILED_CALL_LIMIT", default=4)
LINA_FAILED_CALL_WINDOW_SECONDS = _env(env.int, "LINA_FAILED_CALL_WINDOW_SECONDS", default=60)
# The admins' provider-health page judges each campaign on its calls of this many minutes: at
# this share of calls failing for provider reasons it shows "degraded", at this one "failing".
PROVIDER_HEALTH_WINDOW_MINUTES = _env(env.int, "PROVIDER_HEALTH_WINDOW_MINUTES", default=60)
PROVIDER_HEALTH_DEGRADED_RATE = _env(env.float, "PROVIDER_HEALTH_DEGRADED_RATE", default=0.05)
PROVIDER_HEALTH_FAILING_RATE = _env(env.float, "PROVIDER_HEALTH_FAILING_RATE", default=0.5)
# How far back it looks for each campaign's last success and last error (bounded ledger reads).
PROVIDER_HEALTH_LOOKBACK_DAYS = _env(env.int, "PROVIDER_HEALTH_LOOKBACK_DAYS", default=7)

# --- Stock monitoring (Allsafe) --------------------------------------------------------------

# Snapshots older than this many days are deleted by the daily cleanup task.
STOCK_HISTORY_DAYS = _env(env.int, "STOCK_HISTORY_DAYS", default=90)
# Retries of a poll that found the provider unavailable or rate-limited (reads only), with
# exponential backoff from this base plus jitter; the next scheduled poll follows anyway.
STOCK_POLL_MAX_RETRIES = _env(env.int, "STOCK_POLL_MAX_RETRIES", default=3)
STOCK_POLL_RETRY_BASE_SECONDS = _env(env.int, "STOCK_POLL_RETRY_BASE_SECONDS", default=20)
# Polling at scale (docs/performance.md, "Stock polling"): the dispatcher claims due campaigns
# this many at a time and queues one poll task per chunk; each task makes the chunk's
# availability calls on this many threads at once (no database access in them) and writes all
# ledger rows, snapshots and monitors in one transaction.
STOCK_POLL_CHUNK_SIZE = _env(env.int, "STOCK_POLL_CHUNK_SIZE", default=100)
STOCK_POLL_CONCURRENCY = _env(env.int, "STOCK_POLL_CONCURRENCY", default=25)
if STOCK_HISTORY_DAYS < 1:
    raise ImproperlyConfigured("STOCK_HISTORY_DAYS must be at least 1.")
if not 1 <= STOCK_POLL_CHUNK_SIZE <= 1000:
    raise ImproperlyConfigured("STOCK_POLL_CHUNK_SIZE must be between 1 and 1000.")
if not 1 <= STOCK_POLL_CONCURRENCY <= 100:
    raise ImproperlyConfigured("STOCK_POLL_CONCURRENCY must be between 1 and 100.")

# --- Internationalisation -------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Project formats per language (portal/formats/<lang>/formats.py) win over Django's own.
FORMAT_MODULE_PATH = ["portal.formats"]
# The chosen language outlives the browser session (set by the switcher in base.html).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Europe/Berlin")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- E-mail ---------------------------------------------------------------------------------

EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))  # filebased backend only
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = _env(env.int, "EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = _env(env.bool, "EMAIL_USE_TLS", default=False)
# Seconds the SMTP connection may take: "send to customer again" sends while the page waits, so
# an unreachable mail server is an error message after this long, not a hung request.
EMAIL_TIMEOUT = _env(env.int, "EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Voucher portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Logging --------------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "vouchers.security.redaction.RedactSecretsFilter"},
        "no_template_context": {"()": "vouchers.security.redaction.DropTemplateContextFilter"},
    },
    # JSON lines on stdout, the same format as gunicorn's (deploy/gunicorn.conf.py) and Celery's
    # (portal/celery.py hands Celery this configuration).
    "formatters": logformat.FORMATTERS,
    "handlers": {"console": logformat.CONSOLE_HANDLER},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Request bodies never reach the logs; only Django's one-line summaries do.
        "django.request": {"level": "ERROR"},
        # Its DEBUG records dump whole template contexts (full codes, CSRF tokens): never logged.
        "django.template": {"level": "INFO", "filters": ["no_template_context"]},
        # Axes announces itself at every start; its lock-out warnings still come through.
        "axes": {"level": "WARNING"},
    },
}

DJANGO_TABLES2_TEMPLATE = "django_tables2/table.html"

# --- Code look-up throttling (vouchers/services/throttle.py) ---------------------------------
# Per user and per campaign within one window; failed look-ups (unknown codes) have tighter
# limits, kept below LINA's own DENIED threshold (assumed 10 failed calls a minute).
LOOKUP_WINDOW_SECONDS = _env(env.int, "LOOKUP_WINDOW_SECONDS", default=60)
LOOKUP_LIMIT_PER_USER = _env(env.int, "LOOKUP_LIMIT_PER_USER", default=30)
LOOKUP_LIMIT_PER_CAMPAIGN = _env(env.int, "LOOKUP_LIMIT_PER_CAMPAIGN", default=300)
LOOKUP_FAILED_LIMIT_PER_USER = _env(env.int, "LOOKUP_FAILED_LIMIT_PER_USER", default=5)
LOOKUP_FAILED_LIMIT_PER_CAMPAIGN = _env(env.int, "LOOKUP_FAILED_LIMIT_PER_CAMPAIGN", default=8)

# --- Cashier desk (vouchers/services/tokens.py, operations.py) ------------------------------
# A redeem whose answer got lost is called failed (balance unchanged) only once it is this old:
# right after a timeout the provider may still be applying it.
DESK_RECONCILE_SETTLE_SECONDS = _env(env.int, "DESK_RECONCILE_SETTLE_SECONDS", default=30)
# Re-checks of one unknown redeem before it is handed to a person (needs review).
DESK_RECONCILE_MAX_ATTEMPTS = _env(env.int, "DESK_RECONCILE_MAX_ATTEMPTS", default=20)
# How often the "outcome unknown" page reloads itself, in seconds.
DESK_UNKNOWN_REFRESH_SECONDS = _env(env.int, "DESK_UNKNOWN_REFRESH_SECONDS", default=5)

# --- Bulk sales (vouchers/services/bulk_sales.py) --------------------------------------------
SALES_BULK_MAX_BYTES = _env(env.int, "SALES_BULK_MAX_BYTES", default=1024 * 1024)
SALES_BULK_MAX_ROWS = _env(env.int, "SALES_BULK_MAX_ROWS", default=1000)
# How long one run holds a batch; a run that died is taken over (or resumed) after this.
SALES_BULK_LEASE_SECONDS = _env(env.int, "SALES_BULK_LEASE_SECONDS", default=300)
# Rows of one batch sold at the same time (threads of the one run, each with its own database
# connection: a worker process holds up to this many more connections while a batch runs).
SALES_BULK_CONCURRENCY = _env(env.int, "SALES_BULK_CONCURRENCY", default=4)
# Reading and checking one upload stops with a clear error after this long (no file may hold a
# web worker); a valid file of SALES_BULK_MAX_ROWS rows takes a fraction of it.
SALES_BULK_PARSE_SECONDS = _env(env.float, "SALES_BULK_PARSE_SECONDS", default=5.0)
# A row of an upload that matches a row sold from an earlier file of the same campaign within
# this many days is flagged in the preview; the batch starts only once a person confirms it.
SALES_BULK_REPEAT_WINDOW_DAYS = _env(env.int, "SALES_BULK_REPEAT_WINDOW_DAYS", default=7)
