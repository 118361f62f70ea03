"""Results glued by the executed notebooks, read back with scrapbook.

The notebooks glue their results under stable names (:data:`DISCOVERY_SCRAPS` and friends)
with :func:`glue`, which writes scrapbook's own scrap format without importing scrapbook.
The CWL tool ``extract_pairs`` runs ``glacier-velocity extract-pairs NOTEBOOK`` (:func:`extract_pairs`),
which turns the discovery notebook's ``pairs`` scrap into a CWL array of records
(``cwl.output.json`` in the working directory), so the Workflow can scatter over it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..domain.dates import format_datetime
from ..domain.names import MAX_NAME_CHARS, safe_name
from ..errors import InputError

log = logging.getLogger(__name__)

#: Names glued by notebooks/01-discovery.ipynb.
DISCOVERY_SCRAPS = ("pairs", "pairs_json", "message", "scene_count", "selected_count", "pair_count")
#: Names glued by notebooks/02-correlation.ipynb.
CORRELATION_SCRAPS = ("pair_id", "status", "velocity", "quicklook", "item", "stats")
#: Names glued by notebooks/03-aggregation.ipynb.
AGGREGATION_SCRAPS = ("stats", "message", "catalog", "run_report")

#: Media type of a scrap in a notebook output, as scrapbook writes and reads it (version 1).
SCRAP_MEDIA_TYPE = "application/scrapbook.scrap.{encoder}+json"

#: What a notebook glues: text, or a JSON value.
Scrap = str | int | float | bool | list[Any] | dict[str, Any]


def glue(name: str, data: Scrap) -> None:
    """Record ``data`` under ``name`` in the running notebook, as ``scrapbook.glue`` does.

    The output is scrapbook's (a ``display_data`` whose media type names the encoder, ``text``
    for a string, ``json`` for any other JSON value), so :func:`read_scraps` and
    ``scrapbook.read_notebook`` read it back; a test compares the two byte for byte. Importing
    scrapbook itself would bring papermill, pandas and pyarrow into the kernel of every pair,
    about 0.7 s of CPU, to write six small JSON outputs.

    Raises
    ------
    TypeError
        ``data`` is not text or a JSON value (a programming error of the notebook).
    """
    from IPython.display import display

    if isinstance(data, str):
        encoder = "text"
    elif isinstance(data, (bool, int, float, list, dict)):
        json.dumps(data)  # a TypeError now, not an unreadable notebook later
        encoder = "json"
    else:
        raise TypeError(f"scrap {name!r}: cannot glue a {type(data).__name__}; give text or a JSON value")
    payload = {"name": name, "data": data, "encoder": encoder, "version": 1}
    metadata = {"scrapbook": {"name": name, "data": True, "display": False}}
    display({SCRAP_MEDIA_TYPE.format(encoder=encoder): payload}, metadata=metadata, raw=True)


@dataclass(frozen=True)
class PairRecord:
    """One image pair as the Workflow passes it to the correlation step.

    Attributes
    ----------
    id : str
        Pair id from tile and dates, safe as a file name.
    reference_id, secondary_id : str
        STAC item ids of the earlier and the later scene.
    reference_href, secondary_href : str
        URLs (or paths) of the two STAC items.
    reference_datetime, secondary_datetime : str
        Acquisition times, ISO 8601, UTC.
    dt_days : float
        Baseline (days, fractional).
    """

    id: str
    reference_id: str
    reference_href: str
    reference_datetime: str
    secondary_id: str
    secondary_href: str
    secondary_datetime: str
    dt_days: float

    @classmethod
    def from_pair(cls, pair: Any) -> PairRecord:
        """Record of a :class:`glacier_velocity.stac.pairing.Pair`.

        Raises
        ------
        InputError
            A scene has no STAC item href (the item had no self link).
        """
        for scene in (pair.reference, pair.secondary):
            if not scene.self_href:
                raise InputError(
                    f"scene {scene.id!r} has no STAC item href (no self link); the correlation step needs "
                    "item URLs - search a STAC API rather than loading bare item dicts"
                )
        return cls(
            id=pair.id,
            reference_id=pair.reference.id,
            reference_href=pair.reference.self_href,
            reference_datetime=format_datetime(pair.reference.datetime),
            secondary_id=pair.secondary.id,
            secondary_href=pair.secondary.self_href,
            secondary_datetime=format_datetime(pair.secondary.datetime),
            dt_days=float(pair.dt_days),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairRecord:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InputError
            A field is missing or has the wrong type, or the id is not a safe, bounded file
            name (it names the pair's notebook, status and directory in the scatter).
        """
        try:
            record = cls(
                **{name: data[name] for name in cls.__dataclass_fields__} | {"dt_days": float(data["dt_days"])}
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"pair record {data!r:.120} is malformed ({exc!r}); re-run the discovery notebook"
            ) from exc
        if not isinstance(record.id, str) or safe_name(record.id, "") != record.id:
            raise InputError(
                f"pair record id {str(record.id)[:120]!r} is not a safe file name of at most {MAX_NAME_CHARS} "
                "characters (letters, digits, '.', '-', '_'); re-run the discovery notebook"
            )
        return record

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the keys are the fields of the CWL ``pair`` record."""
        return asdict(self)


def read_scraps(notebook: str | os.PathLike[str]) -> dict[str, Any]:
    """Every scrap glued in an executed notebook, by name.

    Parameters
    ----------
    notebook : path-like
        An executed ``.ipynb`` file.

    Returns
    -------
    dict
        Scrap name -> data.

    Raises
    ------
    InputError
        The file is missing or not a notebook.
    """
    import scrapbook as sb

    path = Path(notebook)
    if not path.is_file():
        raise InputError(f"notebook {str(path)!r} does not exist; give the executed notebook written by papermill")
    try:
        book = sb.read_notebook(str(path))
    except Exception as exc:  # nbformat raises several unrelated types for a bad file
        raise InputError(f"{str(path)!r} is not a readable notebook ({exc})") from exc
    return {name: scrap.data for name, scrap in book.scraps.items()}


def read_pairs(notebook: str | os.PathLike[str]) -> tuple[list[PairRecord], str]:
    """The pair list and the discovery message glued by the discovery notebook.

    Parameters
    ----------
    notebook : path-like
        Executed ``01-discovery.ipynb``.

    Returns
    -------
    pairs : list of PairRecord
        In the notebook's order; empty when discovery found no pairs.
    message : str
        The notebook's one-line account (how many pairs, or why none).

    Raises
    ------
    InputError
        The notebook holds no ``pairs`` scrap (it is not an executed discovery notebook).
    """
    scraps = read_scraps(notebook)
    if "pairs" not in scraps:
        raise InputError(
            f"{notebook}: no 'pairs' scrap; give the discovery notebook as executed by papermill "
            f"(scraps found: {', '.join(sorted(scraps)) or 'none'})"
        )
    records = scraps["pairs"]
    if not isinstance(records, list):
        raise InputError(f"{notebook}: the 'pairs' scrap is a {type(records).__name__}, not a list")
    pairs = [PairRecord.from_dict(record) for record in records]
    message = str(scraps.get("message") or f"{len(pairs)} pairs")
    return pairs, message


def write_cwl_output(pairs: Sequence[PairRecord], message: str, directory: str | os.PathLike[str] = ".") -> Path:
    """Write ``cwl.output.json`` holding the outputs of the ``extract_pairs`` tool.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(directory) / "cwl.output.json"
    path.write_text(
        json.dumps({"pairs": [p.to_dict() for p in pairs], "message": message}, indent=2) + "\n", encoding="utf-8"
    )
    return path


def extract_pairs(
    notebook: str | os.PathLike[str], directory: str | os.PathLike[str] = "."
) -> tuple[list[PairRecord], str]:
    """The ``extract_pairs`` CWL tool: read the discovery notebook's pairs and write ``cwl.output.json``.

    Parameters
    ----------
    notebook : path-like
        Executed ``01-discovery.ipynb``.
    directory : path-like
        Where ``cwl.output.json`` goes (the tool's working directory by default).

    Returns
    -------
    pairs, message
        As :func:`read_pairs`; an empty list is a valid answer, and ``message`` says why.

    Raises
    ------
    InputError
        As :func:`read_pairs`.
    """
    pairs, message = read_pairs(notebook)
    write_cwl_output(pairs, message, directory)
    return pairs, message
