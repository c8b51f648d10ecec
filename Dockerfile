# One image for every mes-edge Python process (gateway, sidecar, legacy_sim stand-ins, pricing
# workers, the alert webhook logger); docker-compose.yml picks the command. `pip install .` installs the
# pinned dependencies of pyproject.toml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY sidecar ./sidecar
COPY legacy_sim ./legacy_sim
COPY legacy_adapters ./legacy_adapters
COPY telemetry ./telemetry
COPY contracts ./contracts
COPY resilience ./resilience
COPY configkit ./configkit
COPY sharedstate ./sharedstate
COPY mesdb ./mesdb
COPY devstack ./devstack
RUN pip install . && useradd --system --uid 10001 --home-dir /app mes-edge

COPY config ./config
COPY prometheus/webhook_logger.py ./prometheus/webhook_logger.py
# .run/keys: the API-key store volume (a new named volume copies this folder's owner)
RUN mkdir -p /app/.run/logs /app/.run/keys && chown -R mes-edge /app/.run
USER mes-edge
EXPOSE 8080 8081 9901 9301
CMD ["python", "-m", "gateway", "--config", "config/gateway.yaml", "--workers", "2"]
