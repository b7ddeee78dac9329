"""The notebooks as text: every ``notebooks/*.ipynb`` is paired with a jupytext percent-format ``.py``
(``jupytext.toml``), the two hold the same cells, the scripts pass ruff, and each notebook stays small.

Edit either file of a pair, then ``.venv/bin/jupytext --sync notebooks/NN_name.py`` (the newer file of
the pair is the source; the .ipynb keeps its stored outputs).
"""

import difflib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from jupytext.config import load_jupytext_config
from jupytext.paired_paths import paired_paths

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPOSITORY_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SCRIPTS = sorted(NOTEBOOKS_DIR.glob("*.py"))
TEXT_FORMAT = "py:percent"
MAX_NOTEBOOK_BYTES = 500_000


def sync_hint(notebook):
    return f"run `.venv/bin/jupytext --sync notebooks/{notebook.name}` (the newer file of the pair wins)"


def out_of_sync_message(notebook):
    """None when ``notebook``'s .py pair holds exactly what jupytext writes from the .ipynb, else why not."""
    script = notebook.with_suffix(".py")
    if not script.is_file():
        return f"{script.name} is missing: {sync_hint(notebook)}"
    config = load_jupytext_config(str(notebook))
    expected = jupytext.writes(jupytext.read(notebook), fmt=TEXT_FORMAT, config=config)
    actual = script.read_text(encoding="utf-8")
    if actual == expected:
        return None
    diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"from {notebook.name}", script.name,
                                lineterm="", n=1)
    shown = "\n".join(list(diff)[:30])
    return f"{script.name} is out of sync with {notebook.name}: {sync_hint(notebook)}\n{shown}"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10, [path.name for path in NOTEBOOKS]


def test_every_notebook_has_a_script_and_every_script_a_notebook():
    notebooks = {path.stem for path in NOTEBOOKS}
    scripts = {path.stem for path in SCRIPTS}
    assert not notebooks - scripts, f"notebooks without a .py pair: {sorted(notebooks - scripts)}; " \
        "create it with `.venv/bin/jupytext --sync notebooks/NN_name.ipynb`"
    assert not scripts - notebooks, f".py files in notebooks/ without a notebook: {sorted(scripts - notebooks)}; " \
        "create it with `.venv/bin/jupytext --sync notebooks/NN_name.py`"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_jupytext_toml_pairs_the_notebook_with_its_script(notebook):
    config = load_jupytext_config(str(notebook))
    assert config is not None, "jupytext.toml not found above notebooks/"
    paths = dict(paired_paths(str(notebook), "ipynb", config.default_formats(str(notebook))))
    script = str(notebook.with_suffix(".py"))
    assert script in paths and paths[script]["format_name"] == "percent", paths


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_script_is_in_sync_with_notebook(notebook):
    message = out_of_sync_message(notebook)
    assert message is None, message


def copy_pair(tmp_path, name="03_l1dist_layer"):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(REPOSITORY_ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    for suffix in (".ipynb", ".py"):
        shutil.copy(NOTEBOOKS_DIR / f"{name}{suffix}", tmp_path / "notebooks" / f"{name}{suffix}")
    return tmp_path / "notebooks" / f"{name}.ipynb"


def test_sync_check_fails_when_a_cell_of_the_script_changes(tmp_path):
    notebook = copy_pair(tmp_path)
    assert out_of_sync_message(notebook) is None
    script = notebook.with_suffix(".py")
    text = script.read_text(encoding="utf-8")
    assert text.count("\nSEED = 0\n") == 1
    script.write_text(text.replace("\nSEED = 0\n", "\nSEED = 1\n"), encoding="utf-8")
    message = out_of_sync_message(notebook)
    assert message is not None and "03_l1dist_layer.py is out of sync" in message
    assert "jupytext --sync notebooks/03_l1dist_layer.ipynb" in message and "+SEED = 1" in message


def test_sync_check_fails_when_a_cell_of_the_notebook_changes(tmp_path):
    notebook = copy_pair(tmp_path)
    content = jupytext.read(notebook)
    content.cells[0].source += "\n\nOne more sentence."
    jupytext.write(content, notebook)
    message = out_of_sync_message(notebook)
    assert message is not None and "-# One more sentence." in message


def test_sync_check_fails_when_the_script_is_missing(tmp_path):
    notebook = copy_pair(tmp_path)
    notebook.with_suffix(".py").unlink()
    assert "03_l1dist_layer.py is missing" in out_of_sync_message(notebook)


def ruff_command():
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    executable = shutil.which("ruff")
    return [executable] if executable else None


def test_notebook_scripts_pass_ruff():
    command = ruff_command()
    if command is None:
        pytest.skip("ruff is not installed")
    # notebooks/ruff.toml extends the package's settings in pyproject.toml.
    result = subprocess.run(command + ["check", "--no-cache", "notebooks"], cwd=REPOSITORY_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_under_500_kb(notebook):
    size = notebook.stat().st_size
    assert size < MAX_NOTEBOOK_BYTES, (
        f"{notebook.name} is {size / 1000:.0f} KB with its outputs (limit {MAX_NOTEBOOK_BYTES / 1000:.0f} KB): "
        "lower the figure dpi or store figures as JPEG (see the notebook's first cell)")
