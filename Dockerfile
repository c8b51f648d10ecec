# One image for every mes-edge process (gateway, sidecar, legacy_sim stand-ins, pricing workers, the
# alert webhook logger, mesdb); docker-compose.yml and the Helm chart pick the command. Two stages:
# `build` installs the project with its pinned runtime dependencies (`pip install '.[mesdb]'`: no
# [dev] extras, wheels only) into /opt/venv and then removes pip and setuptools from it; `runtime`
# gets that venv and the two non-package files the processes read, and runs as uid/gid 10001 (the
# chart's runAsUser). devstack/ (make run), tests, benches and docs stay out. Build (needs a container
# engine: none runs on the development machines; CI builds it): docker build -t mes-edge:0.1.0 .
# The base is pinned by exact version; pin its digest as well where your registry mirror knows it
# (FROM python:3.11.14-slim-bookworm@sha256:…). Size and how it was measured: docs/deploy.md, "Image".
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
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
# wheels only (nothing compiled, no compiler in either stage); then the venv loses its installers
RUN /opt/venv/bin/pip install --only-binary :all: '.[mesdb]' \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 mes-edge \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin mes-edge
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY config ./config
COPY prometheus/webhook_logger.py ./prometheus/webhook_logger.py
# .run/keys: the API-key store volume under compose (a new named volume copies this folder's owner)
RUN mkdir -p /app/.run/logs /app/.run/keys && chown -R 10001:10001 /app/.run
USER 10001:10001
EXPOSE 8080 8081 9901 9301
CMD ["python", "-m", "gateway", "--config", "config/gateway.yaml", "--workers", "2"]
