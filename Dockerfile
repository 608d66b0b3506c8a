# syntax=docker/dockerfile:1
#
# Image for the marketplace API, outbox relay, Celery worker and Celery beat (one image, four commands).
#
#   docker build -t marketplace .
#   docker run --rm marketplace marketplace --help
#
# The default command serves the API; docker-compose.yml runs the relay, the worker and beat from the same
# image with `marketplace relay`, `marketplace worker` and `marketplace beat`. See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------
# Build stage: install the project and its dependencies into a self-contained virtualenv.
# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for the rare dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY marketplace/ ./marketplace/
COPY listings/ ./listings/
COPY matching/ ./matching/
COPY payments/ ./payments/
COPY alembic/ ./alembic/
COPY alembic.ini ./

# Compile the web app's message catalogs (zh-CN, en) before installing, so the .mo files ship as package data.
RUN pip install --no-cache-dir --upgrade pip babel \
    && pybabel compile -d marketplace/web/translations -D messages \
    && pip install --no-cache-dir .

# ---------------------------------------------------------------------------------------------------
# Runtime stage: the virtualenv, the migrations and an unprivileged user. No compiler.
# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MARKETPLACE_HOST=0.0.0.0 \
    MARKETPLACE_PORT=8000

# WeasyPrint (the bilingual inspection reports and certificates of conformance) needs Debian's Pango and
# HarfBuzz, and CJK fonts for the Chinese half of every PDF.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app

COPY --from=build /opt/venv /opt/venv
# `marketplace migrate` uses alembic.ini and alembic/ from the working directory (the installed package
# has no checkout around it). Owned by root: read-only for the app user.
COPY alembic.ini ./
COPY alembic/ ./alembic/

# .data (MARKETPLACE_DATA_DIR) is the one writable directory: `marketplace beat` keeps its schedule
# file there. The embedded PostgreSQL/Redis that would also live there are never used in production,
# where the database and Redis URLs are always set.
RUN mkdir -p /app/.data && chown app:app /app/.data

USER app

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["marketplace", "serve", "--host", "0.0.0.0", "--port", "8000"]
