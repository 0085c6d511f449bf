# The reference executor. Built offline by `nox -s image`: Python packages come from a
# wheelhouse prepared on the host (build/wheelhouse), installed with --no-index.
#
# BASE is any image with Python 3.12+ and its venv module: the official slim image by default,
# or the Debian base `nox -s image` makes with debootstrap where no registry can be reached.
ARG BASE=python:3.13-slim
FROM ${BASE}

LABEL org.opencontainers.image.title="reference-executor" \
      org.opencontainers.image.description="Reference executor of the code-executor contract 1.6: FastAPI in front of an IPython kernel" \
      org.opencontainers.image.version="1.0.0" \
      org.opencontainers.image.licenses="MIT" \
      io.executor-contract.version="1.6"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8432 \
    WORKSPACE_FOLDER=/code \
    EXECUTION_TIMEOUT=3 \
    KERNEL_UIDS=1000000-1999999 \
    PATH=/opt/venv/bin:$PATH

# User code runs as two throwaway user ids, alternately (SEC-1, ISO-1), from a range apart from
# a host executor's default (61000-61999): an executor in a container cannot see the host's
# processes, so it cannot tell that a host executor uses an id. The range is wide and a pair is
# claimed from a random one on: a user id's process count (RLIMIT_NPROC) is the host's, and
# containers of this image, which cannot see each other's claims, must not share one. The server stays root only
# to start kernels as them and to sweep a retired one's processes and files, and so cannot be
# signalled by them (SEC-2, ISO-5). /submission (the original deployment's save-to folder) is
# writable by them, sticky like /tmp, and kept across sessions (SUBMISSION_DIR, ISO-2).
RUN mkdir -p /code /submission && chmod 1777 /submission

COPY build/wheelhouse /wheels
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r /wheels/executor-requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps /wheels/executor_conformance-*.whl \
 && rm -rf /wheels

# The original deployment starts executors with `python main.py` in the working directory.
WORKDIR /app
COPY docker/main.py /app/main.py

EXPOSE 8432
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8432'), timeout=2)"]
CMD ["python3", "-m", "reference_executor"]
