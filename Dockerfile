# The player-sessions HTTP service. Cassandra runs in its own container (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what `pip install .` needs: the repository also holds .venv/ and .cassandra/ (node data, GBs),
# which must never end up in the image. Every dependency has a manylinux wheel for CPython 3.11
# (cassandra-driver included), so no compiler is needed in the slim image.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[server]' \
    && useradd --create-home --uid 10001 app

# Nothing here needs root.
USER app
EXPOSE 8000

# Liveness: a Cassandra outage must not mark the process unhealthy (orchestrators that restart
# unhealthy containers would restart every API process at once); readiness is /health/ready.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status != 200)"

# Exec form: the service is PID 1 and gets `docker stop`'s SIGTERM directly.
CMD ["player-sessions", "serve", "--host", "0.0.0.0", "--port", "8000", "--contact-points", "cassandra"]
