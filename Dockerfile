# dora-bot: multi-stage build on the slim Python image; runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dora
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /home/dora
USER dora
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=2)" || exit 1
# Apply migrations first with `docker run --rm --env-file .env IMAGE dora-bot db upgrade`,
# or start with `dora-bot serve --migrate`. SIGTERM drains in-flight requests (up to 25 s).
CMD ["dora-bot", "serve"]
