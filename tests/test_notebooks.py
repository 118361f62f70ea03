"""The papermill notebooks: structure, up to date with their generator, and the discovery
notebook run for real against the demo STAC API, its pair list read back with scrapbook."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from glacier_velocity import demo
from glacier_velocity.demo.stacserver import serve_stac
from glacier_velocity.domain.aoi import AOI
from glacier_velocity.workflow import extract_pairs as scrap
from glacier_velocity.workflow.notebook_engine import ENGINE_NAME
from helpers import NotebookRunner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("01-discovery.ipynb", "02-correlation.ipynb", "03-aggregation.ipynb")
BIN = Path(sys.executable).parent


def _cells(name: str) -> list:
    return nbformat.read(NOTEBOOKS / name, as_version=4).cells


@pytest.mark.parametrize("name", NAMES)
def test_exactly_one_documented_parameters_cell(name: str) -> None:
    cells = _cells(name)
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    lines = tagged[0].source.splitlines()
    assignments = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    assert assignments
    for i in assignments:
        # Every parameter carries a comment: inline, or on the line(s) just above it.
        assert "#" in lines[i] or lines[i - 1].startswith("#") or lines[i - 2].startswith("#"), lines[i]
    ast.parse(tagged[0].source)


@pytest.mark.parametrize("name", NAMES)
def test_no_function_definitions_in_notebooks(name: str) -> None:
    for cell in _cells(name):
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]


@pytest.mark.parametrize(
    ("name", "scraps"),
    [(NAMES[0], scrap.DISCOVERY_SCRAPS), (NAMES[1], scrap.CORRELATION_SCRAPS), (NAMES[2], scrap.AGGREGATION_SCRAPS)],
)
def test_glued_names_are_the_documented_ones(name: str, scraps: tuple[str, ...]) -> None:
    glued = set()
    for cell in _cells(name):
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "glue":
                    glued.add(node.args[0].value)
    assert glued == set(scraps)


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_are_generated_from_their_py_sources() -> None:
    generator = _generator()
    assert [Path(name).with_suffix(".ipynb").name for name in generator.SOURCES] == list(NAMES)
    for name in generator.SOURCES:
        source = NOTEBOOKS / name
        committed = (NOTEBOOKS / name).with_suffix(".ipynb").read_text(encoding="utf-8")
        assert committed == generator.render(source), f"notebooks/{name} changed: run make notebooks"
    assert generator.stale() == []


def test_the_sync_check_sees_an_edited_source(tmp_path: Path) -> None:
    generator = _generator()
    source = tmp_path / "03-aggregation.py"
    text = (NOTEBOOKS / "03-aggregation.py").read_text(encoding="utf-8")
    source.write_text(text.replace("min_count = 1", "min_count = 2"), encoding="utf-8")
    committed = (NOTEBOOKS / "03-aggregation.ipynb").read_text(encoding="utf-8")
    assert generator.render(source) != committed
    parameters = [c for c in generator.build(source).cells if "parameters" in c.metadata.get("tags", [])]
    assert "min_count = 2" in parameters[0].source


def test_running_a_notebook_by_hand_leaves_nothing_for_git(tmp_path: Path) -> None:
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    # What the notebooks write into their working directory with their default parameters,
    # and what papermill or Jupyter leave beside them.
    outputs = [
        "pairs.json",
        "timeline.png",
        "pair/S2_x.tif",
        "status_pair.json",
        "run-report.json",
        "summary/summary_median_v.tif",
        "catalog/catalog.json",
        "discovery.ipynb",
        "out.ipynb",
        ".ipynb_checkpoints/01-discovery-checkpoint.ipynb",
    ]
    sources = [*NAMES, *(Path(n).with_suffix(".py").name for n in NAMES), "make_notebooks.py", ".gitignore"]
    paths = [f"notebooks/{name}" for name in outputs + sources]
    done = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--no-index", *paths], capture_output=True, text=True
    )
    ignored = set(done.stdout.split())
    assert ignored == {f"notebooks/{name}" for name in outputs}


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory: pytest.TempPathFactory):
    data = demo.generate_demo_data(tmp_path_factory.mktemp("demo"))
    with serve_stac([data.collection, data.items]) as url:
        yield url, data


def _demo_parameters(url: str, data: demo.DemoData, **changes) -> dict:
    return {
        "stac_url": url,
        "aoi": AOI.from_bbox(data.bbox).text(),
        "start_year": 2022,
        "end_year": 2023,
        "start_month": demo.DEMO_START_MONTH,
        "end_month": demo.DEMO_END_MONTH,
        "max_cloud_cover": demo.DEMO_MAX_CLOUD_COVER,
        "pairs_per_image": demo.DEMO_PAIRS_PER_IMAGE,
        "max_baseline_days": demo.DEMO_MAX_BASELINE_DAYS,
        **changes,
    }


def _run_discovery(run_notebook: NotebookRunner, tmp_path: Path, parameters: dict) -> Path:
    done = run_notebook(NAMES[0], tmp_path / "discovery.ipynb", parameters)
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path / "discovery.ipynb"


def test_pair_list_read_back_from_the_executed_discovery_notebook(
    demo_api, tmp_path: Path, run_notebook: NotebookRunner
) -> None:
    url, data = demo_api
    notebook = _run_discovery(run_notebook, tmp_path, _demo_parameters(url, data))
    pairs, message = scrap.read_pairs(notebook)
    assert [(p.reference_id, p.secondary_id) for p in pairs] == demo.expected_pairs()
    assert [p.dt_days for p in pairs] == [25.0, 65.0, 50.0, 25.0, 50.0, 25.0]
    first = pairs[0]
    assert first.id == "99XXX_20220610_20220705"
    assert first.reference_href == f"{url}/collections/sentinel-2-l2a/items/S2A_99XXX_20220610_0_L2A"
    assert first.reference_datetime == "2022-06-10T05:52:31Z"
    assert message == "6 pairs from 7 selected of 10 scenes found, tile 99XXX"
    scraps = scrap.read_scraps(notebook)
    assert (scraps["scene_count"], scraps["selected_count"], scraps["pair_count"]) == (10, 7, 6)
    assert json.loads((tmp_path / scraps["pairs_json"]).read_text())["count"] == 6

    # The extract_pairs tool's command: cwl.output.json with the same records.
    out = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "extract-pairs", str(notebook), "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "6 pair(s)" in out.stderr
    written = json.loads((tmp_path / "cwl.output.json").read_text())
    assert written["pairs"] == [p.to_dict() for p in pairs]
    # The timeline comes from glacier_velocity.products.figures, shown in the notebook as a PNG.
    from PIL import Image

    with Image.open(tmp_path / "timeline.png") as image:
        assert image.format == "PNG" and image.size[0] == 1200 and image.size[1] > 400
    outputs = [
        o for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code" for o in c.get("outputs", [])
    ]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_pair_timeline_draws_scenes_and_pairs(demo_api) -> None:
    from matplotlib.figure import Figure

    from glacier_velocity.products.figures import plot_pair_timeline
    from glacier_velocity.stac.discovery import DiscoveryParams, discover_pairs

    url, data = demo_api
    params = {k: v for k, v in _demo_parameters(url, data).items() if k != "stac_url"}
    result = discover_pairs(DiscoveryParams(stac_url=url, **params))
    fig = plot_pair_timeline(
        result.scenes_found,
        result.pairs,
        Figure(),
        selected=result.scenes_selected,
        max_cloud_cover=demo.DEMO_MAX_CLOUD_COVER,
    )
    ax_scenes, ax_pairs = fig.axes
    found, selected = ax_scenes.collections[:2]
    assert (len(found.get_offsets()), len(selected.get_offsets())) == (10, 7)
    assert [t.get_text() for t in ax_pairs.get_yticklabels()][0] == "99XXX_20220610_20220705 (25 d)"
    assert len(ax_pairs.get_yticklabels()) == 6
    # Without pairs it still draws, and says so.
    empty = plot_pair_timeline(result.scenes_found, [], Figure())
    assert "no pairs" in [t.get_text() for t in empty.axes[1].texts]


def test_zero_pairs_is_an_empty_list_and_a_message(demo_api, tmp_path: Path, run_notebook: NotebookRunner) -> None:
    url, data = demo_api
    # Baselines of 100-200 days: pairs within a season are shorter, across seasons longer.
    parameters = _demo_parameters(url, data, min_baseline_days=100.0, max_baseline_days=200.0)
    notebook = _run_discovery(run_notebook, tmp_path, parameters)
    pairs, message = scrap.read_pairs(notebook)
    assert pairs == []
    assert message.startswith("no pairs found:") and "baseline" in message
    out = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "extract-pairs", str(notebook), "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert "no pairs to correlate" in out.stderr and "baseline" in out.stderr
    assert json.loads((tmp_path / "cwl.output.json").read_text()) == {"pairs": [], "message": message}


def test_scrap_rejects_a_notebook_without_pairs(tmp_path: Path) -> None:
    notebook = tmp_path / "other.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    with pytest.raises(scrap.InputError, match="no 'pairs' scrap"):
        scrap.read_pairs(notebook)
    out = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "extract-pairs", str(notebook)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "no 'pairs' scrap" in out.stderr
    assert "Traceback" not in out.stderr


def test_pair_record_round_trip() -> None:
    record = scrap.PairRecord(
        "a_1_2", "A", "http://x/A", "2022-06-10T05:52:31Z", "B", "http://x/B", "2022-07-05T05:52:31Z", 25.0
    )
    assert scrap.PairRecord.from_dict(record.to_dict()) == record
    with pytest.raises(scrap.InputError, match="malformed"):
        scrap.PairRecord.from_dict({"id": "x"})


def test_glue_writes_what_scrapbook_writes_and_reads(tmp_path: Path) -> None:
    import scrapbook as sb
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() publishes rich outputs, as in a kernel
    values = {"text": "S2_99XXX_20220610_20220705.tif", "empty": "", "count": 6, "share": 0.25, "flag": True}
    values |= {"records": [{"pair_id": "a", "dt_days": 25.0}], "stats": {"median": None, "grid": [40, 40]}}
    with capture_output() as ours:
        for name, value in values.items():
            scrap.glue(name, value)
    with capture_output() as theirs:
        for name, value in values.items():
            sb.glue(name, value)
    assert [(o.data, o.metadata) for o in ours.outputs] == [(o.data, o.metadata) for o in theirs.outputs]
    # Read back by scrapbook from a notebook holding the outputs, as extract-pairs reads them.
    cell = nbformat.v4.new_code_cell(
        "",
        outputs=[nbformat.v4.new_output("display_data", data=o.data, metadata=o.metadata) for o in ours.outputs],
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "glued.ipynb")
    assert scrap.read_scraps(tmp_path / "glued.ipynb") == values
    with pytest.raises(TypeError, match="cannot glue a set"):
        scrap.glue("bad", {1, 2})  # type: ignore[arg-type]


def _engine_notebook(path: Path, mark: Path) -> None:
    """A notebook whose kernel writes ``mark`` only if its exit handlers run."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell(f"import atexit\natexit.register(lambda: open({str(mark)!r}, 'w').close())"),
        nbformat.v4.new_code_cell("print('last cell ran')"),
    ]
    nbformat.write(notebook, path)


@pytest.mark.parametrize(("engine", "exit_handlers_run"), [(ENGINE_NAME, False), (None, True)])
def test_the_tools_engine_stops_the_kernel_at_once_keeping_every_output(
    tmp_path: Path, engine: str | None, exit_handlers_run: bool, run_notebook: NotebookRunner
) -> None:
    # The CWL tools' engine: no graceful shutdown (the kernel's exit handlers do not run), yet the
    # executed notebook holds the last cell's output. papermill's own engine, for contrast, lets
    # the kernel run them.
    mark = tmp_path / "exit-handlers-ran"
    _engine_notebook(tmp_path / "in.ipynb", mark)
    done = run_notebook(tmp_path / "in.ipynb", tmp_path / "out.ipynb", engine=engine, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [o.get("text") for o in executed.cells[-1].outputs] == ["last cell ran\n"]
    assert mark.exists() is exit_handlers_run
