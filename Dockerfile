# The #121# server image: the wheel and the locked dependencies in a virtual environment,
# run as a non-root user. Two stages: the build tools and the source stay in the first.
#
#   docker build -t ussd121 .       (README, "Operating it": size, healthcheck, volumes)
#
# tests/test_install.py runs these same steps outside Docker on every CI run: the lock
# installed with its hashes, the wheel on top without dependencies, as a non-root user, then a
# dialogue through the served app.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/ussd
WORKDIR /src
# The dependencies first, from the lock alone (every version and hash pinned): this layer is
# rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/ussd/bin/pip install --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY ussd ./ussd
COPY menus ./menus
# The package as a wheel, not an editable install: what is in the image is what the wheel
# holds (the menus included), and nothing resolves a dependency outside the lock. pip and
# setuptools leave the environment once done (23 MB the server never runs).
RUN /opt/ussd/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/ussd/bin/pip install --no-deps /wheels/*.whl \
 && /opt/ussd/bin/pip check \
 && /opt/ussd/bin/pip uninstall --yes --quiet pip setuptools

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 ussd \
 && useradd --system --uid 10001 --gid ussd --no-create-home --shell /usr/sbin/nologin ussd \
 && mkdir /seed && chown ussd:ussd /seed
COPY --from=build /opt/ussd /opt/ussd
ENV PATH=/opt/ussd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER ussd
WORKDIR /seed
# 8000: the gateways' endpoints; 9100: /metrics when USSD_METRICS_PORT=9100 (compose sets it).
EXPOSE 8000 9100
# Ready: the app answers and reaches its Redis (a 503 from /readyz fails the check).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["ussd", "serve", "--host", "0.0.0.0", "--port", "8000"]
