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


def test_readme_engine_example_runs_after_the_first(shared_data_dir, tmp_path, monkeypatch):
    blocks = [block.replace('"../shared/data/', f'"{shared_data_dir.as_posix()}/')
              for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)]
    assert len(blocks) >= 2 and "ClassBalancedPipeline" in blocks[1]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    exec(compile(blocks[1].replace("train_siamese(", "history = train_siamese("), "README.md", "exec"), namespace)
    assert len(namespace["history"].history["loss"]) == 3
    assert (tmp_path / "models" / "in_batch_checkpoints" / "run.json").exists()
