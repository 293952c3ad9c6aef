# syntax=docker/dockerfile:1
# carbongate: one image for every container it runs (webhook, carbon feed,
# deferral controller, governance); the manifests pick the command.
#   make image            -> carbongate:dev
#   kind load docker-image carbongate:dev
# Two stages: the first builds the wheel and a virtualenv with everything it
# needs, the second copies only that virtualenv onto a fresh slim Python, so
# no compiler, pip cache or source tree ships. It runs as an unprivileged
# user with a read-only root filesystem in the cluster (deploy/base).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m pip install build
COPY . .
# The project as a wheel: exactly what `pip install carbongate` would get.
RUN python -m build --wheel --outdir /wheels .
RUN python -m venv /opt/carbongate
# The embedded OPA engine declares Python >= 3.14 but works on 3.11 through
# ctypes (see the Makefile), so it goes in first, on its own.
RUN /opt/carbongate/bin/pip install --ignore-requires-python opa-golib-python-bindings==0.4.4 \
 && /opt/carbongate/bin/pip install /wheels/carbongate-*.whl
# The demo grid traces the feed replays when no providers file is configured
# (the dev overlay): carbongate.settings.DEMO_GRID_DIR is examples/grid next
# to the installed packages.
RUN target="$(/opt/carbongate/bin/python -P -c 'import carbongate.settings as s; print(s.DEMO_GRID_DIR)')" \
 && mkdir -p "$(dirname "$target")" \
 && cp -r examples/grid "$target" \
 && /opt/carbongate/bin/python -P -c 'import carbongate.settings as s; assert sorted(s.DEMO_GRID_DIR.glob("*.csv"))'

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="carbongate" \
      org.opencontainers.image.description="Carbon-aware admission controller for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
# HOME on /tmp: the root filesystem is read-only in the cluster (/tmp is an
# emptyDir there), and libraries put per-user files under HOME (gunicorn's
# control socket in ~/.gunicorn, matplotlib's cache in ~/.config).
ENV PATH=/opt/carbongate/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/carbongate /opt/carbongate
# A fixed numeric user (no name needed): runAsNonRoot can verify it.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin carbongate
USER 10001:10001
WORKDIR /tmp
# Fails the build, not the first pod, if the install is broken.
RUN carbongate --help > /dev/null && python -c "import webhook, carbon_feed, deferral, governance, opa_bindings"
CMD ["carbongate", "--help"]
