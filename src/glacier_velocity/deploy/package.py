"""The OGC EO Application Package: one packed CWL ``$graph`` built from ``cwl/``.

An Application Deployment and Execution Service (ADES, OGC API - Processes Part 2), Calrissian
or any CWL runner receives a single file whose first process is the Workflow
``glacier-velocity`` and whose tools run in the project's container image. :func:`build_package`
turns the CWL sources, written to run without containers during development, into that file:

- the tools' ``DockerRequirement`` moves from ``hints`` to ``requirements`` with the image
  reference (registry prefix included), so a runner must use the image;
- each tool's ``notebook`` input, a ``File`` next to the sources, becomes the path of the same
  notebook inside the image (``/opt/glacier-velocity/notebooks``, see ``docker/Dockerfile``),
  so the package needs no file besides itself;
- ``$include``\\ d JavaScript is inlined and ``run:`` references point into the graph;
- schema.org metadata is added at the document level: version, repository, licence, creation
  date and keywords from ``pyproject.toml``; the authors (named persons with e-mail and
  affiliation), the publisher and the help pages from ``codemeta.json``, whose version and
  other shared fields ``make package`` refreshes from ``pyproject.toml``.

Every tool must already declare ``ResourceRequirement`` (cores and RAM, min and max) and
``NetworkAccess``; the packer checks rather than invents them, because sensible limits are a
property of each step that only its author knows.

The module also derives the OGC API - Processes process description (with ``cwl2ogc``), the
deploy body (``application/ogcapppkg+json``) and execute requests from job files.
:func:`write_application_package` writes them all; ``glacier-velocity package --image
REGISTRY/glacier-velocity:VERSION`` (``make package``) runs it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from ..domain.outlines import GlacierOutlines
from ..errors import InputError, InvalidParameter

log = logging.getLogger(__name__)

#: Id of the Workflow in the package and of the OGC API process.
PROCESS_ID = "glacier-velocity"
#: Where docker/Dockerfile puts the notebooks inside the image.
IMAGE_NOTEBOOKS = "/opt/glacier-velocity/notebooks"
#: The Workflow source and the order of its tools in the graph (the order of the steps).
WORKFLOW_FILE = "glacier-velocity.cwl"
SCHEMA_ORG = "https://schema.org/"
SCHEMA_ORG_RDF = "http://schema.org/version/9.0/schemaorg-current-http.rdf"
#: Requirements every CommandLineTool of the package must state.
REQUIRED_TOOL_REQUIREMENTS = ("ResourceRequirement", "NetworkAccess")
RESOURCE_FIELDS = ("coresMin", "coresMax", "ramMin", "ramMax")
#: Media type of the execution unit in an OGC API - Processes Part 2 deploy body.
CWL_MEDIA_TYPE = "application/cwl+json"

_IMAGE_RE = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


#: The project's CodeMeta file (repository root): who made it, who publishes it, where help is.
#: Name, description, version, licence, repository and keywords in it follow ``pyproject.toml``
#: (:func:`codemeta_document`; ``make package`` rewrites it).
CODEMETA_FILE = "codemeta.json"
CODEMETA_CONTEXT = "https://w3id.org/codemeta/3.0"


@dataclass(frozen=True)
class Organization:
    """A schema.org Organization: an author's affiliation, the publisher."""

    name: str
    url: str | None = None

    def as_cwl(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"class": "s:Organization", "s:name": self.name}
        if self.url:
            entry["s:url"] = self.url
        return entry


@dataclass(frozen=True)
class Person:
    """A schema.org Person, an author of the package (``codemeta.json`` ``author``)."""

    given_name: str
    family_name: str
    email: str
    affiliation: Organization

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def as_cwl(self) -> dict[str, Any]:
        return {
            "class": "s:Person",
            "s:name": self.name,
            "s:givenName": self.given_name,
            "s:familyName": self.family_name,
            "s:email": self.email,
            "s:affiliation": self.affiliation.as_cwl(),
        }


@dataclass(frozen=True)
class HelpPage:
    """Documentation of the software (``s:softwareHelp``, a CreativeWork with its URL)."""

    name: str
    url: str


@dataclass(frozen=True)
class PackageMetadata:
    """schema.org metadata of the application package.

    Attributes
    ----------
    name : str
        Software name (``pyproject.toml`` ``project.name``).
    version : str
        ``s:softwareVersion``, e.g. ``"0.1.0"``.
    description : str
        One-sentence description.
    authors : tuple of Person
        ``s:author`` entries (``codemeta.json``).
    code_repository : str
        ``s:codeRepository`` URL.
    license : str
        SPDX identifier, written as its ``https://spdx.org/licenses/<id>`` URL (``s:license``).
    date_created : date
        ``s:dateCreated``: the date of the source commit, so that packing the same commit twice
        gives the same file.
    keywords : tuple of str
        ``s:keywords``.
    publisher : Organization
        ``s:publisher`` (``codemeta.json``).
    software_help : tuple of HelpPage
        ``s:softwareHelp`` (``codemeta.json``).
    """

    name: str
    version: str
    description: str
    authors: tuple[Person, ...]
    code_repository: str
    license: str
    date_created: date
    keywords: tuple[str, ...]
    publisher: Organization
    software_help: tuple[HelpPage, ...]

    def as_cwl(self) -> dict[str, Any]:
        """Document-level CWL fields (``s:`` prefixed, plus ``$namespaces`` and ``$schemas``)."""
        return {
            "$namespaces": {"s": SCHEMA_ORG},
            "$schemas": [SCHEMA_ORG_RDF],
            "s:name": self.name,
            "s:description": self.description,
            "s:softwareVersion": self.version,
            "s:author": [a.as_cwl() for a in self.authors],
            "s:publisher": self.publisher.as_cwl(),
            "s:softwareHelp": [
                {"class": "s:CreativeWork", "s:name": h.name, "s:url": h.url} for h in self.software_help
            ],
            "s:codeRepository": self.code_repository,
            "s:license": f"https://spdx.org/licenses/{self.license}",
            "s:dateCreated": self.date_created.isoformat(),
            "s:keywords": list(self.keywords),
        }


#: What the package is made from: its s:dateCreated is the date of the last commit touching them.
PACKAGE_SOURCES = ("cwl", "notebooks", "pyproject.toml", CODEMETA_FILE)


def source_date(root: str | os.PathLike[str]) -> date:
    """Date of the package sources: ``SOURCE_DATE_EPOCH`` if set, else the date of the last
    commit touching :data:`PACKAGE_SOURCES`, else today (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=UTC).date()
    try:
        stamp = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%ct", "--", *PACKAGE_SOURCES],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        if stamp:
            return datetime.fromtimestamp(int(stamp), tz=UTC).date()
    except (OSError, subprocess.SubprocessError, ValueError):
        log.info("no git history in %s; s:dateCreated is today", root)
    return datetime.now(UTC).date()


def _pyproject(root: Path) -> dict[str, Any]:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _license_id(project: Mapping[str, Any]) -> str:
    license_ = project.get("license", {})
    license_id = license_.get("text") if isinstance(license_, dict) else str(license_)
    return license_id or "NOASSERTION"


def codemeta_document(root: str | os.PathLike[str]) -> dict[str, Any]:
    """``codemeta.json`` of ``root`` with what ``pyproject.toml`` holds taken from there.

    Name, description, version (the one version source), licence, repository and keywords
    come from ``pyproject.toml``; the people, the publisher and the help pages are the file's own.

    Raises
    ------
    InputError
        No ``codemeta.json``, or not a JSON object.
    """
    root = Path(root)
    path = root / CODEMETA_FILE
    try:
        codemeta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read {path}: {exc}; it holds the package's authors, publisher and help pages"
        ) from exc
    if not isinstance(codemeta, dict):
        raise InputError(f"{path} is not a JSON object")
    project = _pyproject(root)
    derived = {
        "@context": CODEMETA_CONTEXT,
        "@type": "SoftwareSourceCode",
        "name": project["name"],
        "description": project.get("description", ""),
        "version": project["version"],
        "license": f"https://spdx.org/licenses/{_license_id(project)}",
        "codeRepository": (project.get("urls") or {}).get("Repository", codemeta.get("codeRepository", "")),
        "keywords": list(project.get("keywords", [])),
    }
    return {**derived, **{k: v for k, v in codemeta.items() if k not in derived}}


def write_codemeta(root: str | os.PathLike[str]) -> Path:
    """Rewrite ``root/codemeta.json`` from :func:`codemeta_document` (what ``make package`` does)."""
    from ..io.atomic import write_text_atomic

    path = Path(root) / CODEMETA_FILE
    return write_text_atomic(path, json.dumps(codemeta_document(root), indent=2, ensure_ascii=False) + "\n")


def _codemeta_people(
    codemeta: Mapping[str, Any], path: Path
) -> tuple[tuple[Person, ...], Organization, tuple[HelpPage, ...]]:
    """Authors, publisher and help pages of a CodeMeta document, checked field by field."""

    def field(entry: Any, name: str, where: str) -> str:
        value = entry.get(name) if isinstance(entry, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{path}: {where} needs a non-empty {name!r}")
        return value

    def organization(entry: Any, where: str) -> Organization:
        return Organization(field(entry, "name", where), entry.get("url"))

    authors = codemeta.get("author")
    if not isinstance(authors, list) or not authors:
        raise InputError(f"{path}: 'author' must list at least one Person (givenName, familyName, email, affiliation)")
    people = tuple(
        Person(
            field(a, "givenName", f"author {i + 1}"),
            field(a, "familyName", f"author {i + 1}"),
            field(a, "email", f"author {i + 1}"),
            organization(a.get("affiliation"), f"the affiliation of author {i + 1}"),
        )
        for i, a in enumerate(authors)
    )
    publisher = organization(codemeta.get("publisher"), "'publisher'")
    pages = codemeta.get("softwareHelp")
    pages = pages if isinstance(pages, list) else [pages]
    help_pages = tuple(
        HelpPage(field(h, "name", f"softwareHelp {i + 1}"), field(h, "url", f"softwareHelp {i + 1}"))
        for i, h in enumerate(pages)
    )
    return people, publisher, help_pages


def project_metadata(root: str | os.PathLike[str], code_repository: str | None = None) -> PackageMetadata:
    """Package metadata from ``pyproject.toml`` and ``codemeta.json`` in ``root``.

    Parameters
    ----------
    root : path-like
        Repository root.
    code_repository : str, optional
        Repository URL; default ``project.urls.Repository`` of ``pyproject.toml``.

    Raises
    ------
    InvalidParameter
        No repository URL in either place.
    InputError
        ``codemeta.json`` missing, or an author, the publisher or a help page without a field
        the package needs.
    """
    root = Path(root)
    project = _pyproject(root)
    if code_repository is None:
        code_repository = (project.get("urls") or {}).get("Repository")
    if not code_repository:
        raise InvalidParameter(
            "code_repository", "set project.urls.Repository in pyproject.toml or pass --code-repository URL"
        )
    authors, publisher, software_help = _codemeta_people(codemeta_document(root), root / CODEMETA_FILE)
    return PackageMetadata(
        name=project["name"],
        version=project["version"],
        description=project.get("description", ""),
        authors=authors,
        code_repository=code_repository,
        license=_license_id(project),
        date_created=source_date(root),
        keywords=tuple(project.get("keywords", [])),
        publisher=publisher,
        software_help=software_help,
    )


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def _inline_includes(node: Any, base: Path) -> Any:
    """Replace ``{$include: file}`` (relative to ``base``) with the file's text."""
    if isinstance(node, dict):
        if set(node) == {"$include"}:
            return (base / node["$include"]).read_text(encoding="utf-8")
        return {k: _inline_includes(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_includes(v, base) for v in node]
    return node


def requirement_map(entries: Any) -> dict[str, Any]:
    """CWL list-or-map field (requirements, hints) as ``{class: body}``."""
    if isinstance(entries, dict):
        return {k: dict(v or {}) for k, v in entries.items()}
    return {e["class"]: {k: v for k, v in e.items() if k != "class"} for e in entries or []}


def _notebook_to_image_path(tool: dict[str, Any], notebooks_dir: str) -> None:
    """Turn the tool's ``notebook`` File input into the notebook's path under ``notebooks_dir``."""
    notebook = tool["inputs"].get("notebook")
    if notebook is None or notebook.get("type") != "File" or "inputBinding" in notebook:
        return  # e.g. extract_pairs: its notebook is a data input (an upstream output), not the code
    location = (notebook.get("default") or {}).get("location")
    if not location:
        raise InputError(f"tool {tool['id']}: the notebook input has no default location to map into the image")
    tool["inputs"]["notebook"] = {
        "type": "string",
        "label": notebook.get("label", "Notebook"),
        "doc": f"Path of the papermill notebook this tool executes, inside the container image ({notebooks_dir}).",
        "default": f"{notebooks_dir.rstrip('/')}/{Path(location).name}",
    }
    replaced = 0
    for argument in tool.get("arguments", []):
        if isinstance(argument, dict) and argument.get("valueFrom") == "$(inputs.notebook.path)":
            argument["valueFrom"] = "$(inputs.notebook)"
            replaced += 1
    if replaced != 1:
        raise InputError(f"tool {tool['id']}: expected one argument '$(inputs.notebook.path)', found {replaced}")


def _package_tool(tool: dict[str, Any], image: str, notebooks_dir: str, container: str) -> dict[str, Any]:
    tool = copy.deepcopy(tool)
    requirements = requirement_map(tool.get("requirements"))
    hints = requirement_map(tool.get("hints"))
    missing = [r for r in REQUIRED_TOOL_REQUIREMENTS if r not in requirements]
    if missing:
        raise InputError(f"tool {tool['id']}: the package needs {', '.join(missing)} under requirements")
    absent = [f for f in RESOURCE_FIELDS if f not in requirements["ResourceRequirement"]]
    if absent:
        raise InputError(f"tool {tool['id']}: ResourceRequirement lacks {', '.join(absent)}")
    hints.pop("DockerRequirement", None)
    requirements.pop("DockerRequirement", None)
    docker = {"dockerPull": image}
    if container == "requirement":
        requirements = {"DockerRequirement": docker, **requirements}
    else:
        hints = {"DockerRequirement": docker, **hints}
    tool["requirements"] = [{"class": k, **v} for k, v in requirements.items()]
    if hints:
        tool["hints"] = [{"class": k, **v} for k, v in hints.items()]
    else:
        tool.pop("hints", None)
    _notebook_to_image_path(tool, notebooks_dir)
    tool.pop("cwlVersion", None)
    return tool


def build_package(
    cwl_dir: str | os.PathLike[str],
    *,
    image: str,
    metadata: PackageMetadata,
    notebooks_dir: str = IMAGE_NOTEBOOKS,
    container: str = "requirement",
) -> dict[str, Any]:
    """Pack the Workflow and its tools into one application package document.

    Parameters
    ----------
    cwl_dir : path-like
        Directory of ``glacier-velocity.cwl`` and the tools it runs.
    image : str
        Container image reference of every tool, e.g. ``registry.example.org/glacier-velocity:0.1.0``.
    metadata : PackageMetadata
        schema.org metadata.
    notebooks_dir : str
        Directory of the notebooks as the tools see it; the image's by default. A development
        package for runs without containers points it at the repository's ``notebooks/``.
    container : {"requirement", "hint"}
        Where the DockerRequirement goes: ``requirement`` (the package proper: the runner must
        use the image) or ``hint`` (development: ``cwltool --no-container`` may run it).

    Returns
    -------
    dict
        The package: ``cwlVersion``, metadata, and ``$graph`` with the Workflow first.

    Raises
    ------
    InvalidParameter
        Malformed image reference or unknown ``container`` mode.
    InputError
        A tool lacks a requirement the package needs, or a step's ``run`` is not a local file.
    """
    if not _IMAGE_RE.match(image):
        raise InvalidParameter(
            "image", f"{image!r} is not a container image reference like registry/glacier-velocity:0.1.0"
        )
    if container not in ("requirement", "hint"):
        raise InvalidParameter("container", f"{container!r}: use 'requirement' or 'hint'")
    cwl_dir = Path(cwl_dir)
    workflow = _inline_includes(_load(cwl_dir / WORKFLOW_FILE), cwl_dir)
    if workflow.get("id") != PROCESS_ID or workflow.get("class") != "Workflow":
        raise InputError(f"{cwl_dir / WORKFLOW_FILE}: expected the Workflow with id {PROCESS_ID!r}")
    cwl_version = workflow.pop("cwlVersion")
    tools: dict[str, dict[str, Any]] = {}
    for name, step in workflow["steps"].items():
        run = step["run"]
        if not isinstance(run, str) or not (cwl_dir / run).is_file():
            raise InputError(f"step {name}: 'run' must name a CWL file next to the Workflow, got {run!r}")
        tool = _inline_includes(_load(cwl_dir / run), (cwl_dir / run).parent)
        if tool.get("cwlVersion") != cwl_version:
            raise InputError(f"{run}: cwlVersion {tool.get('cwlVersion')} differs from the Workflow's {cwl_version}")
        if tool["id"] not in tools:
            tools[tool["id"]] = _package_tool(tool, image, notebooks_dir, container)
        step["run"] = f"#{tool['id']}"
    document: dict[str, Any] = {"cwlVersion": cwl_version, **metadata.as_cwl(), "$graph": [workflow, *tools.values()]}
    return document


class _BlockDumper(yaml.SafeDumper):
    """YAML dumper writing multi-line strings (docs, JavaScript, embedded files) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def to_yaml(data: Mapping[str, Any]) -> str:
    """YAML text of a document, keys in their given order, multi-line strings as blocks."""
    return yaml.dump(dict(data), Dumper=_BlockDumper, sort_keys=False, width=120, allow_unicode=True)


def write_package(document: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the package as YAML (block style, keys in their given order)."""
    from ..io.atomic import write_text_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, to_yaml(document))
    return path


# --- OGC API - Processes documents -----------------------------------------------------------


def process_description(package_path: str | os.PathLike[str], version: str) -> dict[str, Any]:
    """OGC API - Processes process description of the package's Workflow.

    Inputs and outputs (with their JSON schemas) come from ``cwl2ogc``; id, title, description
    and version from the Workflow and the metadata.

    Parameters
    ----------
    package_path : path-like
        The packed application package.
    version : str
        Process version (the software version).
    """
    from cwl2ogc import BaseCWLtypes2OGCConverter
    from cwl_utils.errors import GraphTargetMissingException
    from cwl_utils.parser import load_document_by_uri

    try:
        workflow = load_document_by_uri(f"{Path(package_path).resolve().as_uri()}#{PROCESS_ID}")
    except GraphTargetMissingException as exc:
        raise InputError(f"{package_path}: no process with id {PROCESS_ID!r}: {exc}") from exc
    converter = BaseCWLtypes2OGCConverter(workflow)
    inputs = converter.get_inputs()
    outputs = converter.get_outputs()
    # What cwl2ogc leaves out: an input with a default may be omitted (minOccurs 0, the default
    # in the schema, false included), the ranges of bounded inputs, and what the catalog is.
    for cwl_input in workflow.inputs:
        name = cwl_input.id.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if name in inputs and cwl_input.default is not None:
            inputs[name]["minOccurs"] = 0
            inputs[name]["schema"] = {**inputs[name]["schema"], "default": cwl_input.default}
    for name, (low, high) in INPUT_RANGES.items():
        if name in inputs:
            inputs[name]["schema"] = {**inputs[name]["schema"], "minimum": low, "maximum": high}
    if "catalog" in outputs:
        outputs["catalog"]["schema"] = dict(STAC_CATALOG_SCHEMA)
    return {
        "id": PROCESS_ID,
        "title": workflow.label,
        "description": workflow.doc,
        "version": version,
        "jobControlOptions": ["sync-execute", "async-execute"],
        "outputTransmission": ["value", "reference"],
        "inputs": inputs,
        "outputs": outputs,
    }


#: Inputs with a closed range (the library's checks refuse values outside it).
INPUT_RANGES: dict[str, tuple[float, float]] = {
    "start_month": (1, 12),
    "end_month": (1, 12),
    "max_cloud_cover": (0, 100),
}
#: Schema of the run's STAC catalog output (a STAC Catalog, JSON, given by reference).
STAC_CATALOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "contentMediaType": "application/json",
    "allOf": [{"$ref": "https://schemas.stacspec.org/v1.0.0/catalog-spec/json-schema/catalog.json"}],
}


def deploy_body(document: Mapping[str, Any], description: Mapping[str, Any]) -> dict[str, Any]:
    """Deploy request body (``application/ogcapppkg+json``) with the package inline.

    The execution unit carries the CWL itself (``value``), so the ADES needs no access to
    where the package was built; ``{"href": URL, "type": "application/cwl"}`` works as well.
    """
    return {
        "processDescription": dict(description),
        "executionUnit": {"value": dict(document), "mediaType": CWL_MEDIA_TYPE},
    }


def execute_request(job: Mapping[str, Any], outputs: Sequence[str] = ("catalog",)) -> dict[str, Any]:
    """OGC API - Processes execute request from a CWL job (input name -> value).

    Parameters
    ----------
    job : mapping
        CWL job object, e.g. ``params/demo.yml`` loaded.
    outputs : sequence of str
        Outputs to return; the STAC catalog by default.
    """
    return {
        "inputs": dict(job),
        "outputs": {name: {"transmissionMode": "reference"} for name in outputs},
        "response": "document",
    }


def _demo_job(path: Path, outlines: GlacierOutlines | None) -> dict[str, Any]:
    """The demo job for a remote process: its outlines inline (the server has no demo files).

    The demo's job names its outlines by a bare file name, a file the demo writes beside its
    scenes; ``outlines`` are those outlines (``glacier_velocity.demo.scenes.demo_glacier_outlines``,
    given by the caller: deployment does not depend on the demo).
    """
    job = dict(_load(path))
    named = job.get("glacier_outlines")
    if outlines is not None and isinstance(named, str) and named == Path(named).name:
        job["glacier_outlines"] = json.dumps(outlines.to_geojson(), separators=(",", ":"))
    return job


def write_ogc_documents(
    document: Mapping[str, Any],
    package_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    params_dir: str | os.PathLike[str],
    *,
    demo_outlines: GlacierOutlines | None = None,
) -> dict[str, Path]:
    """Write the process description, deploy body and execute requests (demo, Yazghil) as JSON.

    ``demo_outlines``, the demo glacier's outlines, go inline into the demo's execute request.

    Returns
    -------
    dict
        Name -> path of each file written in ``out_dir``.
    """
    from ..io.atomic import write_text_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = str(document["s:softwareVersion"])
    description = process_description(package_path, version)
    files = {
        "process-description.json": description,
        "deploy.json": deploy_body(document, description),
        "execute-demo.json": execute_request(_demo_job(Path(params_dir) / "demo.yml", demo_outlines)),
        "execute-yazghil.json": execute_request(_load(Path(params_dir) / "yazghil.yml")),
    }
    written = {}
    for name, body in files.items():
        written[name] = out_dir / name
        write_text_atomic(written[name], json.dumps(body, indent=2) + "\n")
    return written


#: Name of the ConfigMap holding the package and the job file (deploy/calrissian/job.yaml mounts it).
CALRISSIAN_CONFIGMAP = "glacier-velocity-package"


def calrissian_configmap(document: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """Kubernetes ConfigMap with the package (``glacier-velocity.cwl``) and a job (``job.yml``).

    Parameters
    ----------
    document : mapping
        The application package.
    job : mapping
        CWL job object, e.g. ``params/yazghil.yml`` loaded.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CALRISSIAN_CONFIGMAP,
            "labels": {
                "app.kubernetes.io/name": PROCESS_ID,
                "app.kubernetes.io/version": str(document["s:softwareVersion"]),
            },
        },
        "data": {
            "glacier-velocity.cwl": to_yaml(document),
            "job.yml": yaml.safe_dump(dict(job), sort_keys=False),
        },
    }


@dataclass(frozen=True)
class PackageFiles:
    """What :func:`write_application_package` wrote.

    Attributes
    ----------
    package : Path
        The application package (CWL ``$graph``, YAML).
    codemeta : Path
        ``codemeta.json`` of the repository, its version and other fields refreshed from ``pyproject.toml``.
    ogc_documents : tuple of Path
        Process description, deploy body and execute requests; empty unless asked for.
    calrissian_configmap : Path or None
        The Calrissian ConfigMap, if asked for.
    """

    package: Path
    codemeta: Path
    ogc_documents: tuple[Path, ...] = ()
    calrissian_configmap: Path | None = None


def write_application_package(
    *,
    image: str,
    output: str | os.PathLike[str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
    code_repository: str | None = None,
    notebooks_dir: str = IMAGE_NOTEBOOKS,
    container: str = "requirement",
    ogc_dir: str | os.PathLike[str] | None = None,
    calrissian_dir: str | os.PathLike[str] | None = None,
    demo_outlines: GlacierOutlines | None = None,
) -> PackageFiles:
    """Build the application package of the repository and write it, refresh ``codemeta.json``
    (:func:`write_codemeta`), and optionally write the OGC API - Processes documents and the
    Calrissian ConfigMap (what ``make package`` commits).

    Parameters
    ----------
    image : str
        Container image reference of every tool (see :func:`build_package`).
    output : path-like, optional
        Package file; default ``dist/glacier-velocity.<version>.cwl`` in the repository.
    project_root : path-like, optional
        Repository holding ``cwl/``, ``params/`` and ``pyproject.toml``; found from here by default.
    code_repository : str, optional
        ``s:codeRepository`` URL (default ``project.urls.Repository``).
    notebooks_dir, container : str
        As for :func:`build_package`.
    ogc_dir : path-like, optional
        Also write the OGC documents (:func:`write_ogc_documents`) into this directory.
    calrissian_dir : path-like, optional
        Also write ``configmap.yaml`` (package + Yazghil job, :func:`calrissian_configmap`) here.
    demo_outlines : GlacierOutlines, optional
        The demo glacier's outlines, inline in the demo's execute request (with ``ogc_dir``).

    Raises
    ------
    InvalidParameter, InputError
        As :func:`project_metadata` and :func:`build_package`.
    """
    from ..io.atomic import write_text_atomic
    from ..workflow.runner import find_project_root

    root = find_project_root(project_root)
    codemeta = write_codemeta(root)
    metadata = project_metadata(root, code_repository)
    document = build_package(
        root / "cwl", image=image, metadata=metadata, notebooks_dir=notebooks_dir, container=container
    )
    package = write_package(document, output or root / "dist" / f"{PROCESS_ID}.{metadata.version}.cwl")
    log.info("application package: %s", package)
    ogc_documents: tuple[Path, ...] = ()
    if ogc_dir is not None:
        ogc_documents = tuple(
            write_ogc_documents(document, package, ogc_dir, root / "params", demo_outlines=demo_outlines).values()
        )
    configmap = None
    if calrissian_dir is not None:
        header = (
            "# Generated by `make package` (glacier-velocity package --calrissian): the package and the Yazghil job.\n"
        )
        configmap = write_text_atomic(
            Path(calrissian_dir) / "configmap.yaml",
            header + to_yaml(calrissian_configmap(document, _load(root / "params" / "yazghil.yml"))),
        )
    return PackageFiles(package=package, codemeta=codemeta, ogc_documents=ogc_documents, calrissian_configmap=configmap)
