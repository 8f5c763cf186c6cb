# Warden's image: the controller (`python -m controller run`, the default) and the paper exchange
# (`python -m paper`). Runtime dependencies come pinned, with hashes, from requirements.lock (the runtime
# part of uv.lock, `make lock`);
# tests/chart/test_dockerfile.py runs these same install steps in a clean venv.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/warden
COPY requirements.lock ./
RUN /opt/warden/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml ./
COPY controller ./controller
COPY paper ./paper
RUN /opt/warden/bin/pip install --no-cache-dir --no-deps . \
    && /opt/warden/bin/pip check

FROM python:3.11-slim
RUN groupadd --system --gid 10001 warden \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin warden
COPY --from=build /opt/warden /opt/warden
ENV PATH=/opt/warden/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
WORKDIR /tmp
USER 10001:10001
# metrics, health
EXPOSE 9464 8080
ENTRYPOINT ["python", "-m", "controller"]
CMD ["run"]
