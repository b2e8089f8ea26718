# One image for every blindgate process: the gateway, the agents (entrypoint `blindgate`) and,
# with `--entrypoint blindgate-testbed`, the testbed's reference partner backends.
# deploy/compose.yaml runs a whole network from it; tests/deploy checks this file's commands.
# Root inside: the acquirer agents bind port 443 on the host network (the SDK connects there).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/blindgate
COPY pyproject.toml README.md ./
COPY src ./src
COPY testbed ./testbed
RUN pip install --no-cache-dir . ./testbed

# The network directory (`blindgate-testbed network init`) is mounted here.
WORKDIR /network
ENTRYPOINT ["blindgate"]
CMD ["--help"]
