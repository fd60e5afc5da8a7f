#!/usr/bin/env bash
# Installs what the tests need (a virtualenv with the pinned packages, Debian's Chromium for the
# browser test) and runs lint (ruff, the import layers) and the whole test suite. README's test
# command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON=${PYTHON:-python3}

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -r requirements-test.txt
# The taming-transformers reference for the VQGAN converter test; --no-deps: it declares
# pytorch-lightning and torchvision, which break this torch (the test stubs what it imports).
.venv/bin/python -m pip install -q --no-deps taming-transformers-rom1504==0.0.6
# The project itself, editable: the `unlearn` command and the entry points plug-ins extend.
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
