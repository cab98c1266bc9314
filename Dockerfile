# One image for web, worker, beat and the one-shot migrate job (docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_ENV=production

WORKDIR /app
RUN useradd --system --create-home --home-dir /home/portal portal

COPY pyproject.toml README.md ./
COPY portal ./portal
COPY vouchers ./vouchers
COPY sandbox ./sandbox
RUN pip install .

COPY . .
# collectstatic needs settings that import; these placeholders never serve a request.
RUN DJANGO_SECRET_KEY=build-only-placeholder-key-that-is-long-enough-for-the-check-0123 \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    FIELD_ENCRYPTION_KEYS=mHmWrZbQ0Rkq3ZAo2eUwiN8-ovC_ldkd7kWfvBHmeOo1 \
    DJANGO_ALLOWED_HOSTS=build CELERY_BROKER_URL=memory:// REDIS_URL=redis://build:6379/0 \
    DJANGO_ENV=development DJANGO_STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --noinput

USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "60", "--access-logfile", "-"]
