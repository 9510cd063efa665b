"""notebooks/inspect_run.ipynb executes top to bottom on the output of a tiny real run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from hieros_pl.train import run
from tests.conftest import compose

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "inspect_run.ipynb"
PROBE = "import sys\nprint('kernel executable:', sys.executable)"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny_run")
    overrides = ("debug=fast", "hierarchy=depth1", "env_steps=80", "train_ratio=32")
    run(compose(*overrides, f"run_dir={directory}"))
    return directory


def _this_python_kernel(spec_root: Path) -> KernelManager:
    """A "python3" kernel on this interpreter, whatever kernelspecs the machine has installed.

    A user-level python3 spec (e.g. ~/.local/share/jupyter/kernels) may point at another Python
    without this project installed; a private spec directory sidesteps it.
    """
    spec_dir = spec_root / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hieros-pl tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_root)], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _texts(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_notebook_is_short_with_a_parameters_cell_and_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert len(notebook.cells) <= 8
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert code[0].source.startswith("RUN_DIR = ")
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_inspect_run_notebook_executes_on_a_tiny_run(run_dir: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(cell for cell in notebook.cells if cell.cell_type == "code")
    parameters.source = f"RUN_DIR = {str(run_dir)!r}"
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        notebook,
        km=_this_python_kernel(tmp_path / "kernels"),
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    text = _texts(notebook)
    assert f"kernel executable: {sys.executable}" in text
    assert "last logged env_steps: 80" in text
    # debug=fast switches the final evaluation off, so the last cell reports its absence.
    assert f"no evaluation JSON in {run_dir / 'eval'}" in text
    assert _images(notebook) == 3
    figures = sorted(path.name for path in (run_dir / "figures").glob("*.png"))
    assert figures == ["episode_score.png", "level0_world_model.png", "replay_visit_deciles.png"]
