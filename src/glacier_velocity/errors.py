"""Exceptions raised by glacier-velocity.

Every error a user can cause derives from :class:`GlacierVelocityError`, and its message says
what was wrong and how to fix it. The CLI turns these into a one-line message and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class GlacierVelocityError(Exception):
    """Base class of every error the package raises on purpose."""


class InvalidParameter(GlacierVelocityError, ValueError):
    """A parameter is out of range or malformed. The message names the parameter."""

    def __init__(self, parameter: str, message: str):
        #: The parameter's field name (as in the CWL inputs, notebooks and job files); the
        #: CLI shows its option (``--kebab-case``) instead.
        self.parameter = parameter
        #: The message without the parameter's name.
        self.detail = message
        super().__init__(f"{parameter}: {message}")


class PairsLeftOut(InvalidParameter):
    """The summary has nothing (or too little) left once pairs are left out of it.

    ``parameter`` names what to change (``keep_uncorrected_pairs``, ``max_pair_error_m_per_yr``
    or ``min_count``); ``excluded`` holds the summary's
    :class:`~glacier_velocity.aggregation.summary.ExcludedPair` records, so the run report can
    list them before the step fails.
    """

    def __init__(self, parameter: str, message: str, excluded: tuple = ()):
        self.excluded = excluded
        super().__init__(parameter, message)


class InputError(GlacierVelocityError):
    """An input file, item or asset cannot be used (missing, unreadable, wrong grid, ...)."""


class MalformedItem(InputError):
    """A STAC item field has a value of the wrong form; ``item_id`` and ``field`` name it."""

    def __init__(self, item_id: str, field: str, detail: str):
        self.item_id = item_id
        self.field = field
        self.detail = detail
        super().__init__(f"item {item_id!r}: {field}: {detail}")


class OutboundRefused(InputError):
    """A request to a non-public address was refused before it was sent (the outbound-address
    policy of :mod:`glacier_velocity.io.outbound`). ``url`` is what was to be fetched; the
    message is the same whether anything listens there."""

    def __init__(self, url: str, what: str = "", named_hosts: bool = True):
        self.url = url
        self.what = what
        self.named_hosts = named_hosts
        besides = (
            "besides the hosts of URLs given as parameters (stac_url, aoi, glacier_outlines, points_of_interest) and "
            if named_hosts
            else "and "
        )
        super().__init__(
            f"{what}: " * bool(what) + f"{url} resolves to a non-public address (loopback, link-local, private or "
            f"reserved) and was not contacted; only public addresses are fetched from, {besides}what the operator "
            "allows in GLACIER_VELOCITY_ALLOW_ADDRESSES"
        )

    def about(self, what: str, url: str | None = None) -> OutboundRefused:
        """The same refusal, saying what was being fetched (and the URL as the caller knows it)."""
        return OutboundRefused(url or self.url, what, self.named_hosts)


class OutputError(GlacierVelocityError):
    """An output cannot be written (full disk, read-only file system, another writer holds it);
    the message says what was kept."""


class CatalogError(GlacierVelocityError):
    """The STAC API could not be reached or did not answer as a STAC API."""


@dataclass(frozen=True)
class FilterCount:
    """What one filter did: scenes (or pairs) in, removed, and a short explanation."""

    name: str
    before: int
    removed: int
    detail: str = ""

    @property
    def after(self) -> int:
        return self.before - self.removed

    def describe(self) -> str:
        if self.name == "search":
            text = f"search: found {self.before}"
        else:
            text = f"{self.name}: {self.before} -> {self.after} (removed {self.removed})"
        return f"{text}; {self.detail}" if self.detail else text


class NoScenesFound(GlacierVelocityError):
    """No scene passed the filters; the message says which filter removed what.

    ``filters`` holds the count of every filter step up to the one that removed the last scene.
    """

    def __init__(self, message: str, filters: tuple[FilterCount, ...] = ()):
        self.filters = filters
        super().__init__(message)


class NoPairsFound(GlacierVelocityError):
    """Scenes were found but no pair passed the pairing and baseline filters."""


class TrackingFailed(GlacierVelocityError):
    """Feature tracking produced no usable displacement (nothing trackable, no overlap)."""


class AllPairsFailed(GlacierVelocityError):
    """Every pair attempted in a run failed: the run has no velocity product.

    ``report`` is the run's :class:`~glacier_velocity.products.runreport.RunReport` (written
    before this is raised); the message lists each pair's reason. A run with no pairs at all
    is not this: it succeeds with an empty catalog.
    """

    def __init__(self, message: str, report: object = None):
        self.report = report
        super().__init__(message)


class EngineUnavailable(GlacierVelocityError):
    """A tracking engine was requested whose software is not installed."""


class WorkflowFailed(InputError):
    """A cwltool run ended with an error; the message holds the end of its log."""


class ContainerEngineUnavailable(GlacierVelocityError):
    """Neither docker nor podman answers; the message says how to get one."""


class GlacierVelocityWarning(UserWarning):
    """Warnings of this package; filter them with ``warnings.simplefilter(..., GlacierVelocityWarning)``."""
