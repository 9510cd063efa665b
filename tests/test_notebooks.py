"""Every notebook executes top to bottom on the output of a tiny real run or a tiny sweep."""

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

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "inspect_run.ipynb"
DECODED_SUBGOALS = NOTEBOOKS / "decoded_subgoals.ipynb"
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
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
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


@pytest.mark.parametrize("path", [NOTEBOOK, DECODED_SUBGOALS], ids=lambda path: path.stem)
def test_notebook_is_short_with_a_parameters_cell_and_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert len(notebook.cells) <= 8
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert code[0].source.startswith("RUN_DIR = ")
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def _execute(path: Path, parameters: str, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    first.source = parameters
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        notebook,
        km=_this_python_kernel(tmp_path / "kernels"),
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return notebook


def test_inspect_run_notebook_executes_on_a_tiny_run(run_dir: Path, tmp_path: Path) -> None:
    notebook = _execute(NOTEBOOK, f"RUN_DIR = {str(run_dir)!r}", tmp_path)

    text = _texts(notebook)
    assert f"kernel executable: {sys.executable}" in text
    assert "last logged env_steps: 80" in text
    # debug=fast switches the final evaluation off, so the last cell reports its absence.
    assert f"no evaluation JSON in {run_dir / 'eval'}" in text
    assert _images(notebook) == 3
    figures = sorted(path.name for path in (run_dir / "figures").glob("*.png"))
    assert figures == ["episode_score.png", "level0_world_model.png", "replay_visit_deciles.png"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seeds of a tiny catch run with a final evaluation: the smallest sweep with CIs."""
    directory = tmp_path_factory.mktemp("tiny_sweep")
    for seed in (0, 1):
        overrides = ("debug=fast", "hierarchy=depth1", "env_steps=60", "train_ratio=32")
        final = ("callbacks.final_eval=true", "callbacks.eval_episodes=2", f"seed={seed}")
        run(compose(*overrides, *final, f"run_dir={directory / f'seed{seed}'}"))
    return directory


def _execute_checked(name: str, parameters: str, tmp_path: Path) -> nbformat.NotebookNode:
    """``_execute`` after checking the notebook is valid, parameterised and without outputs."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    return _execute(NOTEBOOKS / name, parameters, tmp_path)


def test_sweep_results_notebook_reports_a_tiny_sweep(sweep_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    parameters = f"SWEEP_DIR = {str(sweep_dir)!r}\nOUT_DIR = {str(out)!r}\nREPS = 100"
    notebook = _execute_checked("sweep_results.ipynb", parameters, tmp_path)
    text = _texts(notebook)
    assert "2 runs (2 finished); configurations: ['default']" in text
    assert "greedy policy, mean of 2 episodes" in text  # the per-game table's protocol column
    assert _images(notebook) == 2  # curve_catch.png, performance_profile.png
    assert (out / "report.md").exists()


def test_replay_sampling_notebook_compares_etbs_and_uniform(run_dir: Path, tmp_path: Path) -> None:
    notebook = _execute_checked(
        "replay_sampling.ipynb", f"RUN_DIR = {str(run_dir)!r}\nLEVEL = 0", tmp_path
    )
    text = _texts(notebook)
    assert "level 0: 65 sequences" in text  # 80 steps, T = 16: 80 - 16 + 1 sequences
    for name in ("this run (etbs)", "etbs τ=0.3 (simulated)", "uniform (simulated)"):
        assert name in text
    assert _images(notebook) == 1


def test_open_loop_notebook_predicts_from_the_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    parameters = f"RUN_DIR = {str(run_dir)!r}\nSEQUENCES = 3"
    notebook = _execute_checked("open_loop_imagination.ipynb", parameters, tmp_path)
    assert "16 steps per sequence: 5 observed, then predicted open loop" in _texts(notebook)
    assert _images(notebook) == 1
    assert (run_dir / "figures" / "open_loop.mp4").stat().st_size > 0


def test_decoded_subgoals_notebook_executes_on_a_tiny_three_level_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = ("debug=fast", "hierarchy=depth3", "env_steps=80", "train_ratio=32")
    run(compose(*overrides, f"run_dir={run_dir}"))
    parameters = f"RUN_DIR = {str(run_dir)!r}\nSTEPS = 20\nEVERY = 8\nSEED = 1"
    notebook = _execute(DECODED_SUBGOALS, parameters, tmp_path)
    text = _texts(notebook)
    assert f"kernel executable: {sys.executable}" in text
    assert "3 levels, 20 steps" in text
    assert "decoded subgoal images: [(3, 16, 16, 3), (3, 4, 16, 16, 3)]" in text
    assert "level 1: cosine to goal q50/q90/q99" in text
    assert _images(notebook) == 1
    assert (run_dir / "figures" / "decoded_subgoals.png").exists()
