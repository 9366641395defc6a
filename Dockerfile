# syntax=docker/dockerfile:1
#
#   docker build -t ticketsys .
#   docker run --rm -p 8000:8000 -v ticketsys-data:/data ticketsys              # monolith
#   docker run --rm -p 8001:8001 -e SERVICE_TOKEN=... ticketsys vacancy         # one service
#
# compose.yaml runs every mode from this one image.

# uv at a fixed version (the one that wrote uv.lock), so a rebuild months later reads the
# lock the same way instead of whatever :latest has become.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11-slim AS build
COPY --from=uv /uv /bin/uv
# Compile bytecode now rather than on every container start (the runtime user cannot write
# into the venv); copy files out of the cache mount, which is another filesystem; use the
# image's own Python so the venv's interpreter link also resolves in the runtime stage.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# Dependencies alone first, from the lock only: this layer is rebuilt when uv.lock or
# pyproject.toml change, not on every source edit. --frozen installs the lock as it is, never
# re-resolving (tests/test_install.py keeps it current). No extras: the image serves with the
# embedded server, which needs the runtime dependencies alone.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY README.md ./
COPY ticketsys ./ticketsys
# --no-editable installs the project into site-packages, so the runtime stage needs the
# venv alone and no source tree.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM python:3.11-slim AS runtime
# A fixed uid/gid so a host directory can be chowned to it ahead of time. /data is created
# and chowned before VOLUME so that a new named volume starts out owned by that user.
RUN groupadd --system --gid 10001 ticketsys \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ticketsys \
 && mkdir -p /data \
 && chown 10001:10001 /data
# The venv stays owned by root: the service can run its code but not change it.
COPY --from=build /app/.venv /app/.venv

# HOST: inside a container loopback is unreachable from other containers and the host.
# DATA_DIR: the journal store's files belong on the volume, not in the container layer.
ENV HOST=0.0.0.0 \
    DATA_DIR=/data \
    PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
VOLUME /data
USER 10001:10001

# monolith, vacancy, ticket: one image serves all three.
EXPOSE 8000 8001 8002

# Shell form so HEALTH_PORT is read when the check runs: compose sets it per service
# (8001 vacancy, 8002 ticket). python's urllib, because the slim image has no curl or wget;
# urlopen raises on anything but 2xx, which exits 1.
# hadolint ignore=DL3025
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${HEALTH_PORT:-8000}/healthz', timeout=2)" || exit 1

# ticketsys runs as PID 1 and handles SIGTERM itself: it stops accepting, answers what it
# had received, closes its stores and exits 0 (with --workers it forwards the signal to its
# children and reaps them), so no init process is needed in between.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ticketsys"]
CMD ["monolith"]
