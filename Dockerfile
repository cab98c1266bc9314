# One image for web, worker, beat and the one-shot migrate job (docker-compose.yml).
# Proven by .ci/container (builds it and runs the compose stack for real).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_ENV=production \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PYTHONPATH=/app

WORKDIR /app
RUN useradd --system --create-home --home-dir /home/portal portal

# Dependencies first, from pyproject.toml alone: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        >/tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app (PYTHONPATH): one copy, the same for manage.py, gunicorn, celery and
# the health-check script.
COPY . .

# Static files are collected in production mode, so the manifest (hashed names) that production's
# storage serves from exists. Production settings refuse to import without their secrets: these are
# throwaway values made inside this one RUN, never written to a layer, never used at run time.
# The deploy check runs on the same settings so a build that would fail it stops here.
RUN export DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
        FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
        DATABASE_URL=sqlite:////tmp/build.sqlite3 DJANGO_ALLOWED_HOSTS=build.invalid \
        CELERY_BROKER_URL=memory:// REDIS_URL=redis://build.invalid:6379/0 \
    && python manage.py collectstatic --noinput --verbosity 0 \
    && test -s "$DJANGO_STATIC_ROOT/staticfiles.json" \
    && python manage.py check --deploy --fail-level WARNING \
    && rm -f /tmp/build.sqlite3

# The code and static files stay owned by root: the running portal cannot change them.
USER portal
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "portal.wsgi"]
