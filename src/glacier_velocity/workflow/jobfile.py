"""Job files of the Workflow (``params/*.yml``): checked with the library's own checks, and
made to run from any directory, before the runner starts.

``glacier-velocity run`` hands a job file to cwltool or Toil, whose steps run the notebooks in
directories of their own. Two things went wrong there that this module settles first:

- A bad value (month 13, an unreadable ``aoi``) was found by the discovery notebook, and the
  user saw the runner's log: 42 lines of notebook traceback with the one clear line in the
  middle. :func:`check_job` builds the steps' parameter dataclasses (``DiscoveryParams``,
  ``CorrelationParams``, ``AggregationParams``) from the job, as the notebooks will, so the
  same check fails at once with the same message, naming the job file. Unknown names (a typo
  the runner would ignore), missing required inputs, a ``staged_items`` Directory that holds no
  staged catalog and ``item_urls`` that are not http(s) are refused too.
- A relative path (``glacier_outlines: outlines.geojson`` beside ``job.yml``) was passed on as
  a string, and the steps, running elsewhere, found no file. :func:`resolve_paths` reads
  relative paths from the job file's directory, as cwltool does for a ``File``'s ``path``: a
  GeoJSON input naming an existing file becomes a ``File`` (which the runner stages into every
  step, a container too), and a ``File``'s relative ``path`` or ``location`` becomes absolute.

:func:`prepare_job` does both; :func:`write_run_job` writes the job the runner runs into the run's directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import GlacierVelocityError, InputError, InvalidParameter
from ..stac.discovery import DiscoveryParams
from ..stac.staged import staged_item_files
from .aggregate import AggregationParams
from .correlate import CorrelationParams

#: The Workflow inputs that are a GeoJSON ``File`` or a string (W,S,E,N, points, a URL, the text).
GEOJSON_INPUTS = ("aoi", "glacier_outlines", "points_of_interest")
#: Suffixes that make a string a file name even when no such file exists (it is then reported missing).
_FILE_SUFFIXES = (".geojson", ".json")
#: The job file the runner runs, in the run's directory (:func:`prepare_job`).
RUN_JOB = "job.yml"


def load_job(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The job file as a mapping of input name -> value.

    Raises
    ------
    InputError
        No such file, not YAML, or not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"job file {path} does not exist; give a params/*.yml file (e.g. params/yazghil.yml)")
    try:
        job = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"job file {path} is not readable YAML: {' '.join(str(exc).split())}") from exc
    if job is None:
        job = {}
    if not isinstance(job, dict):
        raise InputError(f"job file {path} must map input names to values (name: value), not a {type(job).__name__}")
    return job


def _local(value: str) -> bool:
    """A string naming a local file: no URL scheme (a one-letter one is a Windows drive), not inline GeoJSON."""
    scheme = urlsplit(value).scheme
    return not value.lstrip().startswith("{") and (scheme in ("", "file") or len(scheme) == 1)


def resolve_paths(job: Mapping[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """The job with its relative paths read from ``base`` (the job file's directory).

    A GeoJSON input (:data:`GEOJSON_INPUTS`) given as a string that names an existing file
    (relative to ``base``, or absolute) becomes a ``File`` with its absolute path; one that ends
    in ``.geojson`` or ``.json`` but names no file becomes that absolute path, so the check
    says where it looked. Other strings (W,S,E,N, ``lon,lat; lon,lat``, URLs, GeoJSON text)
    are kept. A ``File`` or ``Directory`` value's relative ``path`` or ``location`` is made
    absolute, so the job can be written elsewhere.
    """
    base = Path(base).resolve()
    resolved = dict(job)
    for name, value in job.items():
        if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
            entry = dict(value)
            for key in ("path", "location"):
                where = entry.get(key)
                if isinstance(where, str) and _local(where) and not where.startswith("file:"):
                    entry[key] = str(base / Path(where).expanduser())
            resolved[name] = entry
        elif name in GEOJSON_INPUTS and isinstance(value, str) and value.strip() and _local(value):
            text = value.strip().removeprefix("file://")
            candidate = base / Path(text).expanduser()
            if candidate.is_file():
                resolved[name] = {"class": "File", "path": str(candidate.resolve())}
            elif candidate.suffix.lower() in _FILE_SUFFIXES or os.sep in text:
                resolved[name] = str(candidate)
    return resolved


def workflow_inputs(workflow: str | os.PathLike[str]) -> dict[str, bool]:
    """The Workflow's inputs: name -> whether the job must give it (no default, not optional)."""
    import yaml

    inputs = yaml.safe_load(Path(workflow).read_text(encoding="utf-8"))["inputs"]

    def required(entry: Any) -> bool:
        kind = entry.get("type") if isinstance(entry, dict) else entry
        optional = (isinstance(kind, str) and kind.endswith("?")) or (isinstance(kind, list) and "null" in kind)
        return not optional and not (isinstance(entry, dict) and "default" in entry)

    return {name: required(entry) for name, entry in inputs.items()}


def _for_check(value: Any) -> Any:
    """A job value as the notebooks receive it: a File as its path."""
    if isinstance(value, dict) and value.get("class") == "File":
        return value.get("path") or value.get("location")
    return value


def check_job(job: Mapping[str, Any], inputs: Mapping[str, bool]) -> None:
    """Check a job (after :func:`resolve_paths`) as its steps will, before any step runs.

    Parameters
    ----------
    job : mapping
        Input name -> value.
    inputs : mapping
        The Workflow's inputs, name -> required (:func:`workflow_inputs`).

    Raises
    ------
    InputError
        An input the Workflow does not have (with the closest names), a required input
        missing, or a value the library refuses (its message, naming the parameter). GeoJSON
        inputs are read, URLs included, as the steps will read them.
    """
    unknown = [name for name in job if name not in inputs]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(inputs), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InputError(f"the Workflow has no input {', '.join(hints)}; its inputs are {', '.join(inputs)}")
    missing = [name for name, needed in inputs.items() if needed and job.get(name) is None]
    if missing:
        raise InputError(f"{', '.join(missing)}: required, and not given")
    values = {name: _for_check(value) for name, value in job.items() if value is not None}
    staged = job.get("staged_items")
    if isinstance(staged, dict) and staged.get("class") == "Directory" and staged.get("path"):
        staged_item_files(staged["path"])
    for url in values.get("item_urls") or []:
        if urlsplit(str(url)).scheme not in ("http", "https"):
            raise InvalidParameter("item_urls", f"{str(url)[:120]!r} is not an http(s) URL of a STAC item")
    for params in (DiscoveryParams, CorrelationParams):
        names = {f.name for f in dataclasses.fields(params)}
        params(**{k: v for k, v in values.items() if k in names})
    names = {f.name for f in dataclasses.fields(AggregationParams)}
    # The outlines were read as the correlation step reads them; the points are read here.
    AggregationParams(**{k: v for k, v in values.items() if k in names and k != "glacier_outlines"})


def prepare_job(path: str | os.PathLike[str], workflow: str | os.PathLike[str]) -> dict[str, Any]:
    """Read, resolve (:func:`resolve_paths`) and check (:func:`check_job`) a job file.

    Raises
    ------
    InputError
        As :func:`load_job` and :func:`check_job`, the message starting with the job file's name.
    """
    path = Path(path)
    job = resolve_paths(load_job(path), path.parent)
    try:
        check_job(job, workflow_inputs(workflow))
    except GlacierVelocityError as exc:
        raise InputError(f"job file {path}: {exc}") from exc
    return job


def write_run_job(job: Mapping[str, Any], run_dir: str | os.PathLike[str]) -> Path:
    """Write the job the runner runs, ``run_dir/job.yml`` (:data:`RUN_JOB`); its paths are absolute."""
    import yaml

    target = Path(run_dir) / RUN_JOB
    target.write_text(yaml.safe_dump(dict(job), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target
