# syntax=docker/dockerfile:1
# carbongate: one image for every container it runs (webhook, carbon feed,
# deferral controller, governance); the manifests pick the command.
#   make image            -> carbongate:dev
#   kind load docker-image carbongate:dev
# Two stages: the first builds the wheel and a virtualenv with everything it
# needs, the second copies only that virtualenv onto a fresh slim Python, so
# no compiler, pip cache or source tree ships. It runs as an unprivileged
# user with a read-only root filesystem in the cluster (deploy/base).

# Python 3.14: the embedded OPA engine (opa-golib-python-bindings) declares
# Requires-Python >= 3.14, so here pip installs it as the ordinary dependency
# pyproject.toml declares, with no --ignore-requires-python. Every dependency
# pinned in constraints.txt has a CPython 3.14 wheel; CI runs the tests on
# 3.11 (the project's floor), where the Makefile installs the engine by hand.
# The base image by digest (python:3.14-slim-trixie): a rebuild gets the same
# Python and Debian until someone moves this line.
ARG PYTHON_IMAGE=python:3.14-slim-trixie@sha256:51dafde81dbdb6ebde285137a295cf18a47ca95234fe388a343719cb97305b3d

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
# The project as a wheel (what `pip install carbongate` gets: policies and demo
# grid traces inside), built with the pinned setuptools in a throwaway venv.
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install -c constraints.txt --upgrade pip setuptools wheel \
 && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .
# The runtime venv: the wheel and exactly the versions of constraints.txt.
RUN python -m venv /opt/carbongate \
 && /opt/carbongate/bin/pip install -c constraints.txt --upgrade pip \
 && /opt/carbongate/bin/pip install -c constraints.txt /wheels/carbongate-*.whl

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
RUN carbongate --version && carbongate --help > /dev/null \
 && python -c "import webhook, carbon_feed, deferral, governance, opa_bindings; \
from carbongate import settings as s; assert sorted(s.DEMO_GRID_DIR.glob('*.csv')), s.DEMO_GRID_DIR"
CMD ["carbongate", "--help"]
