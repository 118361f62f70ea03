"""Wrap the application package with eoap-cwlwrap 0.31.0, offline, into one self-contained file.

Run with the interpreter of the eoap-cwlwrap virtualenv (``make package-wrap``)::

    python deploy/ades/wrap.py --workflow dist/glacier-velocity.<v>.cwl#glacier-velocity \\
        --directory-stage-in deploy/ades/stage-in.cwl --file-stage-in deploy/ades/file-stage-in.cwl \\
        --directory-stage-out deploy/ades/stage-out.cwl --output dist/glacier-velocity.<v>.wrapped.cwl

eoap-cwlwrap recognises stage-in/stage-out parameters by their type
``https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI`` and writes an
``$import`` of that schema into the wrapped Workflow. Loading the templates (cwl_utils) and
loading the result (cwltool) would both fetch it from GitHub: schema-salad's fetcher reads the
document (``fetch_text``) and checks every name defined in it (``check_exists``, an HTTP HEAD).
While eoap-cwlwrap runs, this script answers that one URL from ``uri-schema.yaml``; afterwards
it replaces each ``$import`` of it in the result with the type itself, named by its full URI
(what the import defines), so that nothing is fetched when a runner loads the wrapped package.

The package's File inputs are File-or-string unions (``[File, string]``): eoap-cwlwrap turns
them into ``[URI, string]`` and feeds them to the file stage-in, whose input is therefore that
union too (``file-stage-in.cwl``: a URI is fetched, a string passed on). eoap-cwlwrap 0.31.0's
type check (``is_type_assignable_to``) fails with a TypeError on a union checked against a type
name; this script checks a union member by member, as it already does against a class.

The stage templates hint ``glacier-velocity:latest`` so that they run alone; in the result,
the stage tools run in the package's own image, required (or hinted) as the package's tools are.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urldefrag

from ruamel.yaml import YAML

SCHEMA_URL = "https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml"
LOCAL_SCHEMA = Path(__file__).with_name("uri-schema.yaml")


def _serve_schema_locally() -> None:
    """Make schema-salad's fetcher answer SCHEMA_URL (and names in it) from LOCAL_SCHEMA."""
    from schema_salad.fetcher import DefaultFetcher

    fetch_text, check_exists = DefaultFetcher.fetch_text, DefaultFetcher.check_exists

    def offline_fetch_text(self, url, content_types=None):  # type: ignore[no-untyped-def]
        if urldefrag(url)[0] == SCHEMA_URL:
            return LOCAL_SCHEMA.read_text(encoding="utf-8")
        return fetch_text(self, url, content_types)

    def offline_check_exists(self, url):  # type: ignore[no-untyped-def]
        return True if urldefrag(url)[0] == SCHEMA_URL else check_exists(self, url)

    DefaultFetcher.fetch_text = offline_fetch_text  # type: ignore[method-assign]
    DefaultFetcher.check_exists = offline_check_exists  # type: ignore[method-assign]


def _accept_union_stage_in_inputs() -> None:
    """Let eoap-cwlwrap's type check see a URI inside a union (the file stage-in's input)."""
    from eoap_cwlwrap import types

    check = types.is_type_assignable_to

    def is_type_assignable_to(actual, expected):  # type: ignore[no-untyped-def]
        if isinstance(actual, list) and isinstance(expected, str):
            return any(is_type_assignable_to(member, expected) for member in actual)
        return check(actual, expected)

    # Module globals: types.is_uri_compatible_type and the recursion look the name up there.
    types.is_type_assignable_to = is_type_assignable_to


def _schema_types() -> list[dict]:
    """The types of LOCAL_SCHEMA under the names the import gives them (SCHEMA_URL#name)."""
    types = YAML(typ="safe").load(LOCAL_SCHEMA.read_text(encoding="utf-8"))
    for t in types:
        t["name"] = f"{SCHEMA_URL}#{t['name']}"
        for f in t.get("fields", []):
            f["name"] = f"{t['name']}/{f['name']}"
    return types


def _inline_schema(node, types) -> int:  # type: ignore[no-untyped-def]
    """Replace each ``$import`` of SCHEMA_URL in SchemaDefRequirements by ``types``; return how many."""
    replaced = 0
    if isinstance(node, dict):
        if node.get("class") == "SchemaDefRequirement":
            kept = [t for t in node.get("types", []) if t != {"$import": SCHEMA_URL}]
            if len(kept) < len(node.get("types", [])):
                node["types"] = kept + [dict(t) for t in types]
                replaced += 1
        for value in node.values():
            replaced += _inline_schema(value, types)
    elif isinstance(node, list):
        for value in node:
            replaced += _inline_schema(value, types)
    return replaced


#: The processes the stage templates (deploy/ades/*.cwl) add to the wrapped package.
STAGE_TOOLS = ("stage-in", "file-stage-in", "stage-out")


def _as_map(entries):  # type: ignore[no-untyped-def]
    """A CWL list-or-map field (requirements, hints) as {class: body}, keeping the bodies."""
    if entries is None:
        return {}
    if isinstance(entries, dict):
        return {k: v for k, v in entries.items()}
    return {e["class"]: {k: v for k, v in e.items() if k != "class"} for e in entries}


def _as_list(entries):  # type: ignore[no-untyped-def]
    return [{"class": name, **dict(body or {})} for name, body in entries.items()]


def _stage_images(document) -> str:  # type: ignore[no-untyped-def]
    """Run the stage tools in the package's own image, required or hinted as the package's tools are.

    The templates name ``glacier-velocity:latest`` as a hint (to run alone); an ADES would pull
    that tag, which no registry has. Every tool of the package names one image (pinned by digest
    when the package was built with one, ``make package IMAGE_DIGEST=sha256:...``); the stage
    tools get that reference, in ``requirements`` when the package requires it. Returns it.
    """
    placements = set()
    for process in document["$graph"]:
        if process.get("class") != "CommandLineTool" or process.get("id") in STAGE_TOOLS:
            continue
        for field in ("requirements", "hints"):
            docker = _as_map(process.get(field)).get("DockerRequirement")
            if docker:
                placements.add((field, docker["dockerPull"]))
    if len(placements) != 1:
        raise SystemExit(f"wrap: the package's tools must share one image, in one place; found {sorted(placements)}")
    ((field, image),) = placements
    for process in document["$graph"]:
        if process.get("id") not in STAGE_TOOLS:
            continue
        for place in ("requirements", "hints"):
            entries = _as_map(process.get(place))
            entries.pop("DockerRequirement", None)
            if place == field:
                entries = {"DockerRequirement": {"dockerPull": image}, **entries}
            if entries:
                process[place] = _as_list(entries)
            else:
                process.pop(place, None)
    return image


def main(argv: list[str]) -> int:
    from eoap_cwlwrap.builder import main as cwlwrap

    output = Path(argv[argv.index("--output") + 1])
    _serve_schema_locally()
    _accept_union_stage_in_inputs()
    cwlwrap.main(args=argv, standalone_mode=False)
    yaml = YAML()
    document = yaml.load(output.read_text(encoding="utf-8"))
    replaced = _inline_schema(document, _schema_types())
    image = _stage_images(document)
    with output.open("w", encoding="utf-8") as f:
        yaml.dump(document, f)
    if "$import" in output.read_text(encoding="utf-8"):
        print(f"wrap: {output} still has an $import; a runner would fetch it", file=sys.stderr)
        return 1
    print(f"wrapped package: {output} ({replaced} schema import(s) inlined), every tool in {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
