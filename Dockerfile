# One image for every mes-edge process (gateway, sidecar, legacy_sim stand-ins, pricing workers, the
# alert webhook logger, mesdb); docker-compose.yml and the Helm chart pick the command. Two stages:
# `build` installs the project with its pinned runtime dependencies (`pip install '.[mesdb]'`: no
# [dev] extras, wheels only) into /opt/venv and then removes pip and setuptools from it; `runtime`
# gets that venv and the two non-package files the processes read, and runs as uid/gid 10001 (the
# chart's runAsUser). devstack/ (make run), tests, benches and docs stay out. Build (needs a container
# engine: none runs on the development machines; CI builds it): docker build -t mes-edge:0.1.0 .
# The base is pinned by exact version and by the digest of its multi-platform index, as published in
# github.com/docker-library/repo-info repos/python/remote/3.11.15-slim-bookworm.md (commit 3effc3ea;
# linux/amd64 47.8 MB compressed). To move it: that file's newer version, or `docker buildx imagetools
# inspect python:3.11.15-slim-bookworm`. Size and how it was measured: docs/deploy.md, "Image".
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3

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
