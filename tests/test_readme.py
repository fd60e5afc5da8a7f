"""The README's gradio_client example runs as written (only the server address differs)."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_api_example_runs_and_prints_metrics(server):
    block = next(b for b in _python_blocks() if "gradio_client" in b)
    assert 'Client("http://127.0.0.1:7860/")' in block
    code = block.replace("http://127.0.0.1:7860/", server)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().strip().splitlines()[-4:]  # gradio_client first says where it connected
    assert [line.split(" {")[0] for line in lines] == ["original forget", "original retain", "unlearned forget", "unlearned retain"]
    assert all("'probe_acc'" in line and "'psnr_masked'" in line for line in lines)


def _front_matter() -> dict:
    import yaml

    text = README.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_spaces_front_matter_matches_what_we_pin():
    meta = _front_matter()
    pins = dict(
        line.split("==")
        for line in (README.parent / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pins["gradio"].split()[0]
    assert meta["app_file"] == "app.py" and (README.parent / meta["app_file"]).exists()
    assert isinstance(meta["python_version"], str) and meta["python_version"].startswith("3.")
    assert meta["suggested_hardware"] in {"cpu-basic", "cpu-upgrade", "zero-a10g", "t4-small", "t4-medium", "l4x1", "a10g-small"}


def test_dockerfile_installs_as_the_readme_and_serves_on_7860():
    docker = (README.parent / "Dockerfile").read_text()
    ignore = (README.parent / ".dockerignore").read_text().split()
    assert "--uid 1000" in docker and "USER 1000" in docker
    assert "pip install -r requirements.txt" in docker and "pip install -r requirements.txt" in README.read_text()
    assert "GRADIO_SERVER_NAME=0.0.0.0" in docker and "EXPOSE 7860" in docker and "HEALTHCHECK" in docker
    assert 'CMD ["python", "app.py"]' in docker
    # what the app needs is copied in; what it does not is kept out of the build context
    for path in ("unlearn_core", "assets", "checkpoints", "app.py"):
        assert f" {path} " in docker or f" {path}\n" in docker or f" ./{path}" in docker, path
    for path in (".git", ".venv", "tests", "test-artifacts"):
        assert path in ignore, path
