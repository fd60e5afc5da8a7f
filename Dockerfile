# I2I Unlearning Studio: the web app on the embedded models, on port 7860.
#   docker build -t unlearn-studio .
#   docker run --rm -p 7860:7860 unlearn-studio                      # CPU
#   docker run --rm --gpus all -p 7860:7860 unlearn-studio           # NVIDIA GPU (CUDA build of torch)
# Also what a Hugging Face Docker Space builds (docs/deploy.md, "Docker"). The install is the README's:
# a virtualenv and `pip install -r requirements.txt`. TORCH_INDEX picks where torch comes from:
# empty (default) takes PyPI's build (CUDA on Linux, several GB), or e.g.
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu   for a CPU-only image (~1 GB smaller than CUDA).
FROM python:3.11-slim

ARG TORCH_INDEX=""
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1

# Spaces run containers as uid 1000; so does this image.
RUN useradd --create-home --uid 1000 user
USER 1000
ENV HOME=/home/user \
    PATH=/home/user/app/.venv/bin:$PATH
WORKDIR /home/user/app

# Dependencies first, so that code changes do not reinstall them.
COPY --chown=user requirements.txt ./
RUN python -m venv .venv \
    && if [ -n "$TORCH_INDEX" ]; then pip install --index-url "$TORCH_INDEX" "$(grep '^torch==' requirements.txt)"; fi \
    && pip install -r requirements.txt

COPY --chown=user unlearn_core ./unlearn_core
COPY --chown=user assets ./assets
COPY --chown=user checkpoints ./checkpoints
COPY --chown=user app.py README.md pyproject.toml ./

EXPOSE 7860
# The app answers on / once it has loaded (about 3 s after start on a 2-core CPU).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]
CMD ["python", "app.py"]
