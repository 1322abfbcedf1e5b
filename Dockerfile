# convctl: the control plane (`convctl serve`) and the sync agent (`convctl agent run`).
#   docker build -t convctl .
#   docker run -p 8080:8080 -v convctl-data:/data convctl
# Build stage: a venv with convctl and its dependencies (all wheels: no compiler needed).
# Final stage: that venv on python:slim, run as an unprivileged user; no build tools, no sources.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/convctl
COPY pyproject.toml README.md LICENSE MANIFEST.in ./
COPY reconciler ./reconciler
RUN /opt/convctl/bin/pip install --no-cache-dir . \
    && /opt/convctl/bin/pip uninstall --yes pip

FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="convctl" \
      org.opencontainers.image.description="GitOps for ad conversion events: control plane and sync agent" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/convctl/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CONVCTL_HOST=0.0.0.0 \
    CONVCTL_PORT=8080 \
    CONVCTL_STATE=sqlite:////data/state.db \
    CONVCTL_LOG_FORMAT=json
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home convctl
COPY --from=build /opt/convctl /opt/convctl
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('CONVCTL_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["convctl"]
# Plain HTTP on every interface: terminate TLS in front (a proxy, an ingress), or give
# --tls-cert/--tls-key instead of --insecure.
CMD ["serve", "--insecure"]
