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
