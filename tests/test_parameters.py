"""One name and one default per parameter, derived from the dataclass fields.

For each workflow step, the fields of its parameter dataclass are the parameters. Each must
be, with the same default: a CWL input of the step's tool and of the Workflow (snake case), a
variable of the step notebook's ``parameters`` cell (snake case), an option of the step's CLI
subcommand (``--kebab-case``). The job files use only these names, and the README's
parameter table lists exactly the Workflow's inputs. Any drift fails here.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from glacier_velocity.cli import build_parser, main, option_name
from glacier_velocity.stac.discovery import DiscoveryParams
from glacier_velocity.tracking import TrackingParams
from glacier_velocity.workflow.aggregate import AggregationParams
from glacier_velocity.workflow.correlate import CorrelationParams

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Step:
    params: type
    cwl: str
    notebook: str
    command: str
    #: Inputs of the step that are not settings (what to work on), named the same everywhere.
    inputs: tuple[str, ...] = ()
    #: Where the step writes, per layer (a CWL tool writes into its working directory).
    notebook_outputs: tuple[str, ...] = ()
    cli_outputs: tuple[str, ...] = ()


STEPS = {
    "discovery": Step(
        DiscoveryParams,
        "discover.cwl",
        "01-discovery.py",
        "discover",
        inputs=("staged_items", "item_urls"),
        notebook_outputs=("pairs_json",),
        cli_outputs=("out",),
    ),
    "correlation": Step(
        CorrelationParams,
        "correlate.cwl",
        "02-correlation.py",
        "correlate",
        inputs=("reference_href", "secondary_href", "staged_items"),
        notebook_outputs=("pair_id",),
        cli_outputs=("out_dir",),
    ),
    "aggregation": Step(
        AggregationParams,
        "aggregate.cwl",
        "03-aggregation.py",
        "aggregate",
        inputs=("products", "statuses", "message"),
        notebook_outputs=("out_dir",),
        cli_outputs=("out_dir",),
    ),
}
#: Notebook values that are worked examples for a hand run (Yazghil Glacier), where the
#: dataclass has no default or None (the whole scene): CWL requires them or passes null.
EXAMPLES = {"aoi", "start_year", "end_year", "reference_href", "secondary_href", "products", "statuses"}


def _fields(params: type) -> dict[str, Any]:
    """Field name -> default (dataclasses.MISSING when required)."""
    return {f.name: f.default for f in dataclasses.fields(params)}


def _cwl_inputs(name: str) -> dict[str, dict]:
    inputs = yaml.safe_load((ROOT / "cwl" / name).read_text())["inputs"]
    return {k: v for k, v in inputs.items() if k != "notebook"}


def _notebook_parameters(name: str) -> dict[str, Any]:
    """The variables assigned in the notebook source's ``parameters`` cell, and their values."""
    text = (ROOT / "notebooks" / name).read_text()
    cell = text.split('# %% tags=["parameters"]\n', 1)[1].split("\n# %%", 1)[0]
    values: dict[str, Any] = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.Assign):
            values[node.targets[0].id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
        elif isinstance(node, ast.AnnAssign):
            values[node.target.id] = ast.literal_eval(node.value)  # type: ignore[attr-defined,arg-type]
    return values


def _subcommand(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


def _cli_actions(command: str) -> dict[str, argparse.Action]:
    """dest -> action of a subcommand's options and positionals (not --help)."""
    return {a.dest: a for a in _subcommand(command)._actions if a.dest != "help"}


def _cwl_optional(entry: dict) -> bool:
    kind = entry["type"]
    return kind.endswith("?") if isinstance(kind, str) else isinstance(kind, list) and "null" in kind


def _cwl_kinds(entry: dict) -> tuple[str, ...]:
    """The CWL types an input takes, without null: ``("File", "string")`` for ``["null", File, string]``."""
    kind = entry["type"]
    if isinstance(kind, list):
        return tuple(k for k in kind if k != "null")
    return (kind.rstrip("?") if isinstance(kind, str) else kind["type"],)


#: Inputs that name a vector file or carry its text: a File is staged into the step (a
#: container, an ADES) and reaches it as its path; a string is W,S,E,N, a URL or the text.
FILE_OR_STRING = {"aoi", "glacier_outlines", "points_of_interest"}


@pytest.mark.parametrize("step", STEPS.values(), ids=list(STEPS))
def test_cwl_tool_inputs_are_the_fields_with_their_defaults(step: Step) -> None:
    fields = _fields(step.params)
    inputs = _cwl_inputs(step.cwl)
    extra = {"pair_id"} if step.command == "correlate" else set()
    assert set(inputs) == set(fields) | set(step.inputs) | extra
    for name, default in fields.items():
        entry = inputs[name]
        if default is dataclasses.MISSING:
            assert "default" not in entry and not _cwl_optional(entry), f"{step.cwl}: {name} is required"
        elif default is None:
            assert "default" not in entry and _cwl_optional(entry), f"{step.cwl}: {name} is optional"
        else:
            assert entry.get("default") == default, (
                f"{step.cwl}: {name} default {entry.get('default')!r} != {default!r}"
            )


def _kind(entry: dict) -> str:
    kinds = _cwl_kinds(entry)
    if kinds == ("File", "string"):
        return "string"  # a File binds as its path, a string as it is: both raw
    (base,) = kinds
    # A Directory binds as its path, like a string; a list of strings as YAML, like a boolean.
    return {
        "string": "string",
        "enum": "string",
        "Directory": "string",
        "int": "number",
        "float": "number",
        "boolean": "yaml",
        "string[]": "yaml",
    }[base]


@pytest.mark.parametrize("step", [STEPS["discovery"], STEPS["correlation"]], ids=["discovery", "correlation"])
def test_each_input_binds_the_notebook_parameter_of_its_name_without_javascript(step: Step) -> None:
    # Strings raw (-rNAME VALUE: papermill passes them untouched, GeoJSON text included), numbers
    # through papermill's int-or-float reading (-pNAME VALUE), booleans and lists as YAML; a null optional
    # input adds nothing, so the notebook's own default must then be None.
    text = (ROOT / "cwl" / step.cwl).read_text()
    assert "InlineJavascriptRequirement" not in yaml.safe_load(text)["requirements"]
    assert not re.search(r"\$\{|\$\([^)]*\(", text), "no JavaScript expression"
    parameters = _notebook_parameters(step.notebook)
    inputs = _cwl_inputs(step.cwl)
    assert set(inputs) <= set(parameters), set(inputs) - set(parameters)
    for input_name, entry in inputs.items():
        binding = entry["inputBinding"]
        expected = {
            "string": {"prefix": f"-r{input_name}"},
            "number": {"prefix": f"-p{input_name}"},
            "yaml": {"prefix": "-y", "valueFrom": f"{input_name}: $(self)"},
        }[_kind(entry)]
        assert {k: v for k, v in binding.items() if k != "position"} == expected, input_name
        if _cwl_optional(entry):
            assert parameters[input_name] is None, f"{step.cwl}: optional {input_name} needs the notebook default None"


def test_the_aggregation_tool_passes_every_input_as_a_notebook_parameter() -> None:
    # Its arrays of staged paths go through cwl/lib/papermill.js, which passes every input by name.
    step = STEPS["aggregation"]
    assert set(_cwl_inputs(step.cwl)) <= set(_notebook_parameters(step.notebook))
    assert "papermill_parameters(inputs)" in (ROOT / "cwl" / step.cwl).read_text()


def test_workflow_inputs_are_the_fields_of_every_step_with_the_same_defaults() -> None:
    workflow = _cwl_inputs("glacier-velocity.cwl")
    expected: dict[str, list[dict]] = {}
    for step in STEPS.values():
        for name, entry in _cwl_inputs(step.cwl).items():
            # Besides the settings, the items a run may be given instead of a search.
            if name in _fields(step.params) or name in STEPS["discovery"].inputs:
                expected.setdefault(name, []).append(entry)
    assert set(workflow) == set(expected)
    for name, entries in expected.items():
        # A parameter several steps share (aoi) is required by the Workflow when one step requires it.
        required = [e for e in entries if not _cwl_optional(e)]
        entry = required[0] if required else entries[0]
        assert workflow[name]["type"] == entry["type"], name
        for other in entries:
            assert _cwl_kinds(other) == _cwl_kinds(entry), name
            assert workflow[name].get("default") == other.get("default"), name


@pytest.mark.parametrize("tool", ["glacier-velocity.cwl", *(s.cwl for s in STEPS.values())])
def test_vector_inputs_are_a_file_or_a_string_in_every_cwl_file(tool: str) -> None:
    inputs = _cwl_inputs(tool)
    files = {name for name, entry in inputs.items() if "File" in _cwl_kinds(entry)}
    assert files == FILE_OR_STRING & set(inputs), tool
    for name in files:
        # [File, string] (a list: CWL has no "?" suffix for a union), optional but for discovery's aoi.
        required = tool in ("glacier-velocity.cwl", "discover.cwl") and name == "aoi"
        assert inputs[name]["type"] == (["File", "string"] if required else ["null", "File", "string"]), (tool, name)


@pytest.mark.parametrize("step", STEPS.values(), ids=list(STEPS))
def test_vector_inputs_are_one_text_value_in_the_cli_and_notebooks(step: Step) -> None:
    # What a File becomes in a step (its path) is what the CLI and a notebook take: one string,
    # read by the same reader as W,S,E,N, a URL or the GeoJSON text.
    actions = _cli_actions(step.command)
    parameters = _notebook_parameters(step.notebook)
    for name in FILE_OR_STRING & set(_fields(step.params)):
        assert actions[name].type is None and actions[name].nargs is None, (step.command, name)
        assert parameters[name] is None or isinstance(parameters[name], str), (step.notebook, name)


@pytest.mark.parametrize("step", STEPS.values(), ids=list(STEPS))
def test_notebook_parameters_are_the_fields_with_their_defaults(step: Step) -> None:
    fields = _fields(step.params)
    values = _notebook_parameters(step.notebook)
    assert set(values) == set(fields) | set(step.inputs) | set(step.notebook_outputs)
    for name, default in fields.items():
        if name in EXAMPLES and default in (dataclasses.MISSING, None):
            continue
        assert values[name] == default, f"{step.notebook}: {name} = {values[name]!r}, the default is {default!r}"


@pytest.mark.parametrize("step", STEPS.values(), ids=list(STEPS))
def test_cli_options_are_the_kebab_case_fields_with_their_defaults(step: Step) -> None:
    fields = _fields(step.params)
    actions = _cli_actions(step.command)
    assert set(actions) == set(fields) | set(step.inputs) | set(step.cli_outputs)
    for name, default in fields.items():
        action = actions[name]
        # A switch on by default is also offered as --no-<name> (argparse.BooleanOptionalAction).
        expected = [option_name(name)] + ([f"--no-{option_name(name)[2:]}"] if default is True else [])
        assert action.option_strings == expected, (step.command, action.option_strings)
        if default is dataclasses.MISSING:
            assert action.required, f"{step.command} {option_name(name)} is required"
        else:
            assert action.default == default, (
                f"{step.command} {option_name(name)} default {action.default!r} != {default!r}"
            )
    for name in step.inputs:
        # What to work on: positional, or an option of the same name.
        assert actions[name].option_strings in ([], [option_name(name)]), name


def test_track_options_are_the_tracking_fields_with_their_defaults() -> None:
    tracking = _fields(TrackingParams)
    correlation = _fields(CorrelationParams)
    actions = _cli_actions("track")
    for dest, action in actions.items():
        if not action.option_strings:
            continue
        assert action.option_strings[0] == option_name(dest), action.option_strings
        source = tracking if dest in tracking else correlation if dest in correlation else None
        if source is not None:
            assert action.default == source[dest], dest
    # The settings `track` does not take from the dataclasses: the baseline and the output.
    assert set(actions) - set(tracking) - set(correlation) == {"reference", "secondary", "dt_days", "out"}


def test_shared_settings_have_one_default() -> None:
    # Correlation passes these on to tracking: the two dataclasses must agree.
    tracking = _fields(TrackingParams)
    correlation = _fields(CorrelationParams)
    for name in set(tracking) & set(correlation):
        assert tracking[name] == correlation[name], name


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "params").glob("*.yml")))
def test_job_files_use_the_parameter_names(name: str) -> None:
    keys = set(yaml.safe_load((ROOT / "params" / name).read_text()))
    tool = "correlate.cwl" if name == "pair.yml" else "glacier-velocity.cwl"
    unknown = keys - set(_cwl_inputs(tool))
    assert not unknown, f"params/{name}: {sorted(unknown)} are not inputs of cwl/{tool}"


def test_readme_parameter_table_lists_every_workflow_input_with_its_default() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Parameters", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    listed: dict[str, str] = {}
    for cells in rows:
        names = re.findall(r"`([a-z_]+)`", cells[0])
        defaults = [d.strip() for d in cells[2].split(",")]
        for index, parameter in enumerate(names):
            listed[parameter] = defaults[min(index, len(defaults) - 1)].strip("`")
    workflow = _cwl_inputs("glacier-velocity.cwl")
    assert set(listed) == set(workflow)
    for parameter, entry in workflow.items():
        if "default" in entry:
            default = entry["default"]
            shown = listed[parameter]
            expected = (
                str(default).lower()
                if isinstance(default, bool)
                else f"{default:g}"
                if isinstance(default, float)
                else str(default)
            )
            assert shown == expected, f"README: {parameter} default {shown!r}, the Workflow's is {expected!r}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["correlate", "a.json", "b.json", "--out-dir", "x", "--chip-px", "7"],
            "--chip-px: must be an even number of pixels",
        ),
        (
            ["correlate", "a.json", "b.json", "--out-dir", "x", "--max-velocity-m-per-yr", "0"],
            "--max-velocity-m-per-yr: must be a positive",
        ),
        (
            ["track", "a.tif", "b.tif", "--dt-days", "0", "--out", "v.tif"],
            "--dt-days: the baseline must be a positive number of days",
        ),
        (
            [
                "discover",
                "--aoi",
                "1,2,3,4",
                "--start-year",
                "2020",
                "--end-year",
                "2020",
                "--max-cloud-cover",
                "120",
            ],
            "--max-cloud-cover: must be a percentage between 0 and 100",
        ),
    ],
)
def test_cli_errors_name_the_option_the_user_typed(argv: list[str], expected: str, capsys) -> None:
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_library_errors_name_the_field() -> None:
    from glacier_velocity.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match=r"^chip_px: must be an even number of pixels"):
        CorrelationParams(chip_px=7)
    with pytest.raises(InvalidParameter, match=r"^grid_spacing_px: "):
        TrackingParams(grid_spacing_px=0)
    with pytest.raises(InvalidParameter, match=r"^max_velocity_m_per_yr: "):
        CorrelationParams(max_velocity_m_per_yr=-1.0)
