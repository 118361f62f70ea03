"""What happened to every pair of a run: per-pair status records and the run report.

A batch over dozens of pairs must not be lost to one bad scene. The correlation step never
lets a :class:`~glacier_velocity.errors.GlacierVelocityError` of *its pair* (unreadable item
or asset, scenes that do not overlap, nothing trackable, ...) end the run: it records a
:class:`PairStatus` with the reason instead of products (:func:`write_status`). Any other
exception is a bug and still fails the step. The aggregation step collects the statuses into
a :class:`RunReport`, aggregates only the pairs that succeeded, and writes the report as
``run-report.json`` into the STAC catalog (an asset of the summary item, and a ``describedby``
link of the catalog).

Run report schema (``run-report.json``, :data:`RUN_REPORT_SCHEMA` as JSON Schema)::

    {
      "type": "glacier-velocity-run-report",
      "version": 1,
      "software_version": "0.1.0",
      "summary": "4 succeeded / 2 failed",      # the one-line count, also in the summary item
      "message": "6 pairs from 7 selected ...",  # the discovery step's account
      "pairs_attempted": 6,
      "pairs_succeeded": 4,
      "pairs_failed": 2,
      "pairs": [                                 # in the order the pairs were given
        {
          "pair_id": "99XXX_20230724_20230912",
          "reference_id": "S2A_99XXX_20230724_0_L2A",  # from the href when the item was unreadable
          "secondary_id": "S2A_99XXX_20230912_0_L2A",
          "reference_href": "http://.../items/S2A_99XXX_20230724_0_L2A",
          "secondary_href": "http://.../items/S2A_99XXX_20230912_0_L2A",
          "status": "failed",                    # "succeeded" or "failed"
          "error_type": "InputError",            # class name of the error; null when succeeded
          "reason": "cannot read raster '/.../S2A_99XXX_20230912_0_L2A_B08.tif': ...",
          "product": null,                       # velocity product name when succeeded
          "median_v_m_per_yr": null,         # median speed over valid points (m/yr)
          "valid_fraction": null                 # share of grid points with a velocity (0..1)
        }
      ],
      "pairs_left_out": [                        # succeeded, but left out of the summary
        {
          "pair_id": "99XXX_20230605_20230610",
          "cause": "error_above_threshold",      # or "not_corrected", "no_error"
          "v_error_m_per_yr": 151.2,             # the pair's typical 1-sigma speed error (null: none)
          "reason": "typical speed error 151.2 m/yr (median v_error) exceeds max_pair_error_m_per_yr = 100 m/yr"
        }
      ]
    }

A pair's status file (``status_<pair_id>.json``, written by the correlation notebook) is one
element of ``pairs``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from .._version import __version__
from ..aggregation.summary import EXCLUSION_CAUSES
from ..errors import GlacierVelocityError, InputError
from ..io.atomic import write_text_atomic

log = logging.getLogger(__name__)

Status = Literal["succeeded", "failed"]
STATUSES: tuple[str, ...] = ("succeeded", "failed")

#: ``type`` and ``version`` of the run report JSON.
REPORT_TYPE = "glacier-velocity-run-report"
REPORT_VERSION = 1
#: File name of the run report written by the aggregation step.
RUN_REPORT_NAME = "run-report.json"

_PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "pair_id",
        "reference_id",
        "secondary_id",
        "reference_href",
        "secondary_href",
        "status",
        "error_type",
        "reason",
        "product",
        "median_v_m_per_yr",
        "valid_fraction",
    ],
    "additionalProperties": False,
    "properties": {
        "pair_id": {"type": "string", "minLength": 1},
        "reference_id": {"type": "string"},
        "secondary_id": {"type": "string"},
        "reference_href": {"type": "string"},
        "secondary_href": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "error_type": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"]},
        "product": {"type": ["string", "null"]},
        "median_v_m_per_yr": {"type": ["number", "null"]},
        "valid_fraction": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    },
    # A failed pair has a reason and an error type and no product; a success the opposite.
    "if": {"properties": {"status": {"const": "failed"}}},
    "then": {
        "properties": {"error_type": {"type": "string"}, "reason": {"type": "string"}, "product": {"type": "null"}}
    },
    "else": {"properties": {"error_type": {"type": "null"}, "reason": {"type": "null"}, "product": {"type": "string"}}},
}

_LEFT_OUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["pair_id", "cause", "v_error_m_per_yr", "reason"],
    "additionalProperties": False,
    "properties": {
        "pair_id": {"type": "string", "minLength": 1},
        "cause": {"enum": list(EXCLUSION_CAUSES)},
        "v_error_m_per_yr": {"type": ["number", "null"]},
        "reason": {"type": "string", "minLength": 1},
    },
}

#: JSON Schema (draft 2020-12) of ``run-report.json``.
RUN_REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "glacier-velocity run report",
    "type": "object",
    "required": [
        "type",
        "version",
        "software_version",
        "summary",
        "message",
        "pairs_attempted",
        "pairs_succeeded",
        "pairs_failed",
        "pairs",
    ],
    "additionalProperties": False,
    "properties": {
        "type": {"const": REPORT_TYPE},
        "version": {"const": REPORT_VERSION},
        "software_version": {"type": "string"},
        "summary": {"type": "string", "pattern": r"^\d+ succeeded / \d+ failed$"},
        "message": {"type": "string"},
        "pairs_attempted": {"type": "integer", "minimum": 0},
        "pairs_succeeded": {"type": "integer", "minimum": 0},
        "pairs_failed": {"type": "integer", "minimum": 0},
        "pairs": {"type": "array", "items": _PAIR_SCHEMA},
        "pairs_left_out": {"type": "array", "items": _LEFT_OUT_SCHEMA},
    },
}


def _id_from_href(href: str) -> str:
    """Item id guessed from an item URL or file (its last path part without ``.json``)."""
    name = os.path.basename(urlparse(href).path.rstrip("/")) or href
    return name[: -len(".json")] if name.endswith(".json") else name


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class PairStatus:
    """Outcome of one pair's correlation.

    Attributes
    ----------
    pair_id : str
        The pair's id (name of its output directory).
    reference_id, secondary_id : str
        STAC item ids of the two scenes; guessed from the hrefs when an item could not be read.
    reference_href, secondary_href : str
        The item URLs or paths the pair was given.
    status : {"succeeded", "failed"}
    error_type : str or None
        Class name of the error that failed the pair (e.g. ``"InputError"``); None on success.
    reason : str or None
        The error message (it names the scene or file and says what to change); None on success.
    product : str or None
        Name (basename) of the velocity product written; None on failure.
    median_v_m_per_yr : float or None
        Median speed over valid grid points (m/yr); None on failure or when no point is valid.
    valid_fraction : float or None
        Share of grid points with a velocity (0..1); None on failure.
    """

    pair_id: str
    reference_id: str
    secondary_id: str
    reference_href: str
    secondary_href: str
    status: Status
    error_type: str | None = None
    reason: str | None = None
    product: str | None = None
    median_v_m_per_yr: float | None = None
    valid_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InputError(f"pair {self.pair_id!r}: status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "failed" and not self.reason:
            raise InputError(f"pair {self.pair_id!r}: a failed pair needs a reason")

    @property
    def succeeded(self) -> bool:
        """True when the pair's products were written."""
        return self.status == "succeeded"

    @classmethod
    def failed(
        cls,
        pair_id: str,
        reference_href: str,
        secondary_href: str,
        error: GlacierVelocityError,
        *,
        reference_id: str | None = None,
        secondary_id: str | None = None,
    ) -> PairStatus:
        """Status of a pair whose correlation raised ``error``.

        Only :class:`~glacier_velocity.errors.GlacierVelocityError` is accepted: anything else
        is a bug and must not be recorded as a data problem.
        """
        if not isinstance(error, GlacierVelocityError):
            raise TypeError(f"only GlacierVelocityError marks a pair as failed, not {type(error).__name__}") from error
        return cls(
            pair_id=pair_id,
            reference_id=reference_id or _id_from_href(reference_href),
            secondary_id=secondary_id or _id_from_href(secondary_href),
            reference_href=str(reference_href),
            secondary_href=str(secondary_href),
            status="failed",
            error_type=type(error).__name__,
            reason=str(error) or type(error).__name__,
        )

    @classmethod
    def from_products(
        cls,
        pair_id: str,
        reference_href: str,
        secondary_href: str,
        products: Any,
        *,
        reference_id: str,
        secondary_id: str,
    ) -> PairStatus:
        """Status of a pair whose products were written (``products``: a ``PairProducts``)."""
        return cls(
            pair_id=pair_id,
            reference_id=reference_id,
            secondary_id=secondary_id,
            reference_href=str(reference_href),
            secondary_href=str(secondary_href),
            status="succeeded",
            product=products.basename,
            median_v_m_per_yr=_finite_or_none(products.median_v_m_per_yr),
            valid_fraction=_finite_or_none(products.valid_fraction),
        )

    def describe(self) -> str:
        """One line: the pair, its scenes and what happened."""
        head = f"pair {self.pair_id} ({self.reference_id} -> {self.secondary_id})"
        if self.succeeded:
            speed = "n/a" if self.median_v_m_per_yr is None else f"{self.median_v_m_per_yr:.1f} m/yr"
            return f"{head} succeeded: {self.product}, median speed {speed}"
        return f"{head} failed ({self.error_type}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (an element of the run report's ``pairs``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairStatus:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InputError
            A field is missing or unknown (every field is written by :meth:`to_dict`).
        """
        names = {f.name for f in fields(cls)}
        try:
            unknown = set(data) - names
            if unknown:
                raise KeyError(f"unknown fields {sorted(unknown)}")
            missing = names - set(data)
            if missing:
                raise KeyError(f"missing fields {sorted(missing)}")
            return cls(**data)
        except (KeyError, TypeError) as exc:
            raise InputError(f"pair status {data!r:.160} is malformed ({exc}); re-run the correlation step") from exc


def status_text(status: PairStatus) -> str:
    """One pair's status as the JSON text of its file."""
    return json.dumps(status.to_dict(), indent=2) + "\n"


def write_status(status: PairStatus, path: str | os.PathLike[str]) -> Path:
    """Write one pair's status as JSON, atomically (see :mod:`glacier_velocity.io.atomic`)."""
    return write_text_atomic(path, status_text(status))


def read_status(path: str | os.PathLike[str]) -> PairStatus:
    """Read a status file written by :func:`write_status`.

    Raises
    ------
    InputError
        The file is missing or is not a status record.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the pair status {str(path)!r} ({exc}); give the status file of the correlation step"
        ) from exc
    if not isinstance(data, dict):
        raise InputError(f"{str(path)!r} is not a pair status (a JSON object is expected)")
    return PairStatus.from_dict(data)


@dataclass(frozen=True)
class LeftOutPair:
    """A pair that succeeded but was left out of the summary, and why.

    Attributes
    ----------
    pair_id : str
        The pair, as in the run report's ``pairs``.
    v_error_m_per_yr : float or None
        Its typical 1-sigma speed error (median ``v_error``, m/yr); None when it has none.
    reason : str
        In words, naming the parameter that would keep it in.
    cause : {"not_corrected", "no_error", "error_above_threshold"}
        Why, for programs (:data:`~glacier_velocity.aggregation.summary.ExclusionCause`).
    """

    pair_id: str
    v_error_m_per_yr: float | None
    reason: str
    cause: str = "error_above_threshold"

    def __post_init__(self) -> None:
        if self.cause not in EXCLUSION_CAUSES:
            raise InputError(f"pair {self.pair_id!r}: unknown cause {self.cause!r} for leaving it out")

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "cause": self.cause,
            "v_error_m_per_yr": _finite_or_none(self.v_error_m_per_yr),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RunReport:
    """Every pair attempted in a run and what happened to it.

    Attributes
    ----------
    pairs : tuple of PairStatus
        In the order the pairs were given.
    message : str
        The discovery step's account of the run (how many pairs, or why none).
    left_out : tuple of LeftOutPair
        Pairs that succeeded but were left out of the summary (not corrected, no error, or an
        error above ``max_pair_error_m_per_yr``).
    """

    pairs: tuple[PairStatus, ...]
    message: str = ""
    left_out: tuple[LeftOutPair, ...] = ()

    def __post_init__(self) -> None:
        ids = [p.pair_id for p in self.pairs]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise InputError(f"the run report lists pairs more than once: {repeated}; give each pair's status once")

    @property
    def succeeded(self) -> tuple[PairStatus, ...]:
        """The pairs whose products were written."""
        return tuple(p for p in self.pairs if p.succeeded)

    @property
    def failed(self) -> tuple[PairStatus, ...]:
        """The pairs that failed, with their reasons."""
        return tuple(p for p in self.pairs if not p.succeeded)

    def summary_line(self) -> str:
        """``"N succeeded / M failed"``."""
        return f"{len(self.succeeded)} succeeded / {len(self.failed)} failed"

    def describe(self) -> str:
        """The count and, for each failed pair, its id and reason (one line each)."""
        lines = [self.summary_line()]
        lines += [f"  failed: {p.pair_id} ({p.error_type}): {p.reason}" for p in self.failed]
        lines += [f"  left out of the summary: {p.pair_id}: {p.reason}" for p in self.left_out]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict following :data:`RUN_REPORT_SCHEMA`."""
        return {
            "type": REPORT_TYPE,
            "version": REPORT_VERSION,
            "software_version": __version__,
            "summary": self.summary_line(),
            "message": self.message,
            "pairs_attempted": len(self.pairs),
            "pairs_succeeded": len(self.succeeded),
            "pairs_failed": len(self.failed),
            "pairs": [p.to_dict() for p in self.pairs],
            "pairs_left_out": [p.to_dict() for p in self.left_out],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InputError
            Not a run report, or its counts disagree with its pairs.
        """
        if not isinstance(data, dict) or data.get("type") != REPORT_TYPE:
            raise InputError(
                f"not a glacier-velocity run report (type {data.get('type') if isinstance(data, dict) else None!r})"
            )
        left_out = tuple(
            # Reports written before causes were recorded only left out pairs for their error.
            LeftOutPair(
                str(p["pair_id"]), p.get("v_error_m_per_yr"), str(p["reason"]), p.get("cause", "error_above_threshold")
            )
            for p in data.get("pairs_left_out", [])
        )
        report = cls(
            pairs=tuple(PairStatus.from_dict(p) for p in data.get("pairs", [])),
            message=str(data.get("message", "")),
            left_out=left_out,
        )
        if (data.get("pairs_succeeded"), data.get("pairs_failed")) != (len(report.succeeded), len(report.failed)):
            raise InputError("the run report's counts disagree with its pairs; it was edited or truncated")
        return report


def build_run_report(
    statuses: Iterable[PairStatus | str | os.PathLike[str]],
    product_dirs: Sequence[str | os.PathLike[str] | None] = (),
    *,
    message: str = "",
) -> RunReport:
    """The run report from the correlation step's status records.

    Parameters
    ----------
    statuses : iterable of PairStatus or path
        One status per attempted pair (records or ``status_<pair_id>.json`` files).
    product_dirs : sequence of path or None
        The pair product directories handed to aggregation (None for a pair without one).
        Each must belong to a succeeded pair; without any status, each directory counts as
        a succeeded pair named after the directory (aggregation run on products alone).
    message : str
        The discovery step's account.

    Returns
    -------
    RunReport

    Raises
    ------
    InputError
        A status file is unreadable, a product directory has no succeeded status, or a
        succeeded pair has no product directory.
    """
    records = [s if isinstance(s, PairStatus) else read_status(s) for s in statuses]
    dirs = [Path(d) for d in product_dirs if d is not None]
    if not records:
        records = [
            PairStatus(
                pair_id=d.name,
                reference_id="",
                secondary_id="",
                reference_href="",
                secondary_href="",
                status="succeeded",
                product=next((p.stem for p in sorted(d.glob("*.tif"))), d.name),
            )
            for d in dirs
        ]
        return RunReport(tuple(records), message)
    succeeded = {r.pair_id for r in records if r.succeeded}
    given = {d.name for d in dirs}
    if given - succeeded:
        raise InputError(
            f"product directories {sorted(given - succeeded)} have no succeeded pair status; "
            "give the status files of the same correlation run"
        )
    if succeeded - given:
        raise InputError(
            f"pairs {sorted(succeeded - given)} succeeded but their product directories were not given; "
            "give every product directory of the correlation run"
        )
    report = RunReport(tuple(records), message)
    for failed in report.failed:
        log.warning("%s", failed.describe())
    return report


def write_run_report(report: RunReport, path: str | os.PathLike[str]) -> Path:
    """Write ``run-report.json`` atomically; returns its path."""
    return write_text_atomic(path, json.dumps(report.to_dict(), indent=2) + "\n")


def read_run_report(path: str | os.PathLike[str]) -> RunReport:
    """Read a run report written by :func:`write_run_report`.

    Raises
    ------
    InputError
        The file is missing or not a run report.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the run report {str(path)!r} ({exc})") from exc
    return RunReport.from_dict(data)


__all__ = [
    "RUN_REPORT_NAME",
    "RUN_REPORT_SCHEMA",
    "LeftOutPair",
    "PairStatus",
    "RunReport",
    "build_run_report",
    "read_run_report",
    "read_status",
    "status_text",
    "write_run_report",
    "write_status",
]
