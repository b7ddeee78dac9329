"""Runs the README's Python example, so the front page cannot rot."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(shared_data_dir, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    code = blocks[0].replace('"../shared/data/', f'"{shared_data_dir.as_posix()}/')
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "models" / "faces.keras").exists()
    assert "threshold" in namespace and "detection" in namespace["model"].thresholds
