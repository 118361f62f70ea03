"""Scene discovery: search a STAC API, filter the scenes, choose one per month, pair them.

The filters run in this order, and :class:`DiscoveryResult` counts what each removed:

1. **search** - one item search per season year (collection, AOI bbox or geometry, the
   season's datetime range). ``eo:cloud_cover`` is sent as a ``query`` when the server
   supports the query extension, but never trusted: servers without it (e.g. the local
   ``rustac serve``) return everything. When items are given instead (a staged Directory,
   item URLs: :mod:`.staged`), those of them in a season whose footprint intersects the AOI.
2. **cloud_cover** - the item's ``eo:cloud_cover`` (whole tile, %) must be <= the maximum.
   Items without it are removed. Skipped when ``aoi_cloud_cover`` is on (step 5 judges cloud).
3. **tile** - one MGRS tile is kept: the user's, or the one covering the AOI best (largest
   covered fraction of the AOI by any of its scenes), then the one with most scenes fully
   covering the AOI, then the first by name.
4. **footprint** - the scene footprint must cover the whole AOI (no-data edges of a
   data strip make some scenes of a tile partial).
5. **aoi_cloud_cover** (optional) - cloud over the AOI from the ``scl`` asset: classes 3
   (cloud shadow), 8 and 9 (cloud medium/high probability) and 10 (thin cirrus), over the
   pixels that are not 0 (no data). Scenes without ``scl`` keep their tile cloud cover.
6. **month** - the first remaining scene of each calendar month of the season, per season
   year (:func:`glacier_velocity.stac.pairing.select_monthly`; seasons may wrap the year end).
7. **pairs / baseline** - each scene with the next N (:func:`glacier_velocity.stac.pairing.make_pairs`),
   then the baseline range.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pystac
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ..domain.aoi import AOI
from ..domain.dates import format_datetime
from ..domain.sensors import SENTINEL_2, Sensor
from ..errors import (
    CatalogError,
    FilterCount,
    InputError,
    InvalidParameter,
    MalformedItem,
    NoPairsFound,
    NoScenesFound,
    OutboundRefused,
)
from ..io.aoi import parse_aoi
from ..io.outbound import OutboundPolicy
from ..io.raster import read_window
from ..io.retry import RETRY_STATUS, RetryPolicy, SearchBound, last_call, redact, stac_api_io
from .endpoint import EARTH_SEARCH_URL, check_stac_url
from .pairing import (
    DEFAULT_MAX_PAIRS,
    Pair,
    check_baseline_bounds,
    check_max_pairs,
    check_pair_count,
    check_pairs_per_image,
    filter_baseline,
    make_pairs,
    season_months,
    select_monthly,
)
from .scene import Scene
from .staged import given_scenes

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "sentinel-2-l2a"


#: Sentinel-2 L2A scene classification values counted as cloud over the AOI.
SCL_CLOUD_CLASSES = (3, 8, 9, 10)
#: SCL value meaning "no data"; such pixels are left out of the AOI cloud fraction.
SCL_NODATA = 0

#: Items asked for in one page of search results.
SEARCH_PAGE_SIZE = 100
#: Fewest items a page of results may hold on average before a search counts as paged too
#: finely: a tenth of what is asked. Servers cap the page size (commonly at 10 or more) and
#: the last page of each season year is short; one item a page from a server answering every
#: 1.5 s would page max_items = 5000 for two hours.
MIN_ITEMS_PER_PAGE = 10

_TILE = re.compile(r"^\d{2}[C-X][A-Z]{2}$")
# A scene "covers" the AOI when at most this fraction of the AOI lies outside its footprint;
# the slack absorbs floating-point noise of footprint vertices, not real gaps.
_COVER_TOLERANCE = 1e-6


@dataclass(frozen=True, kw_only=True)
class DiscoveryParams:
    """What to search for and how to pair it. Checked when constructed.

    Attributes
    ----------
    start_year, end_year : int
        First and last season year (inclusive). For a season wrapping the year end
        (``start_month > end_month``), season year Y runs from ``start_month`` of Y to
        ``end_month`` of Y + 1.
    aoi : AOI
        Area of interest (lon/lat degrees): ``"W,S,E,N"``, GeoJSON text, the URL or path of a
        GeoJSON file, a ``(west, south, east, north)`` sequence or an :class:`~glacier_velocity.domain.aoi.AOI`;
        read by :func:`~glacier_velocity.io.aoi.parse_aoi` and kept as an ``AOI``. The search
        asks for items intersecting its polygon.
    stac_url : str
        Root of a STAC API (http or https). Default: Earth Search v1.
    collection : str
        Collection id. Default ``sentinel-2-l2a``.
    start_month, end_month : int
        Season (1-12, inclusive); ``11, 2`` means November to February. Default May to October.
    max_cloud_cover : float
        Largest cloud cover kept (%, 0-100), of the tile, or of the AOI when
        ``aoi_cloud_cover`` is on. Default 10 %.
    pairs_per_image : int
        N >= 1: each scene is paired with the next N scenes. Default 2.
    min_baseline_days, max_baseline_days : float, optional
        Keep only pairs whose baseline (days) is within this range; both > 0.
    tile : str, optional
        MGRS tile to use, e.g. ``"43SEA"``; default: the tile covering the AOI best.
    aoi_cloud_cover : bool
        Judge cloud over the AOI from the ``scl`` asset (one small windowed read per scene)
        instead of the tile's ``eo:cloud_cover``.
    max_items : int
        Upper bound on items fetched from the API, over all season years.
    max_pairs : int
        Most pairs the discovery may give (after the baseline filter); more is refused before
        any pair is built (:func:`~glacier_velocity.stac.pairing.check_pair_count`). Default
        :data:`~glacier_velocity.stac.pairing.DEFAULT_MAX_PAIRS`.
    """

    start_year: int
    end_year: int
    aoi: AOI
    stac_url: str = EARTH_SEARCH_URL
    collection: str = DEFAULT_COLLECTION
    # The ablation season of the northern hemisphere: snow-free ice tracks best, clouds are
    # fewest (the Workflow's, the notebooks' and the README's defaults are these same values).
    start_month: int = 5
    end_month: int = 10
    max_cloud_cover: float = 10.0
    pairs_per_image: int = 2
    min_baseline_days: float | None = None
    max_baseline_days: float | None = None
    tile: str | None = None
    aoi_cloud_cover: bool = False
    max_items: int = 5000
    max_pairs: int = DEFAULT_MAX_PAIRS

    def __post_init__(self) -> None:
        check_stac_url(self.stac_url)
        if not isinstance(self.collection, str) or not self.collection.strip():
            raise InvalidParameter(
                "collection", f"must be a collection id such as 'sentinel-2-l2a', got {self.collection!r}"
            )
        object.__setattr__(self, "aoi", parse_aoi(self.aoi))
        for name in ("start_year", "end_year"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1900 <= value <= 2200:
                raise InvalidParameter(name, f"must be a four-digit year, got {value!r}")
        if self.start_year > self.end_year:
            raise InvalidParameter(
                "start_year", f"{self.start_year} is after the end year {self.end_year}; swap them or widen the range"
            )
        season_months(self.start_month, self.end_month)  # validates both months
        cloud = self.max_cloud_cover
        if isinstance(cloud, bool) or not isinstance(cloud, (int, float)) or not 0.0 <= cloud <= 100.0:
            raise InvalidParameter("max_cloud_cover", f"must be a percentage between 0 and 100, got {cloud!r}")
        check_pairs_per_image(self.pairs_per_image)
        check_baseline_bounds(self.min_baseline_days, self.max_baseline_days)
        if self.tile is not None:
            tile = str(self.tile).strip().upper().removeprefix("MGRS-")
            if len(tile) == 6 and tile.startswith("T"):
                tile = tile[1:]
            if not _TILE.match(tile):
                raise InvalidParameter("tile", f"must be an MGRS tile such as '43SEA', got {self.tile!r}")
            object.__setattr__(self, "tile", tile)
        if not isinstance(self.aoi_cloud_cover, bool):
            raise InvalidParameter("aoi_cloud_cover", f"must be true or false, got {self.aoi_cloud_cover!r}")
        if isinstance(self.max_items, bool) or not isinstance(self.max_items, int) or self.max_items < 1:
            raise InvalidParameter("max_items", f"must be an integer >= 1, got {self.max_items!r}")
        check_max_pairs(self.max_pairs)

    @property
    def months(self) -> tuple[int, ...]:
        """Months of the season in season order, e.g. ``(11, 12, 1, 2)``."""
        return season_months(self.start_month, self.end_month)

    @property
    def years(self) -> range:
        """Season years, ``start_year`` .. ``end_year``."""
        return range(self.start_year, self.end_year + 1)

    def season_interval(self, season_year: int) -> tuple[datetime, datetime]:
        """First and last instant (UTC) of the season of ``season_year``."""
        months = self.months
        wraps = months[-1] < months[0]
        end_year = season_year + 1 if wraps else season_year
        last_day = calendar.monthrange(end_year, self.end_month)[1]
        return (
            datetime(season_year, self.start_month, 1, tzinfo=UTC),
            datetime(end_year, self.end_month, last_day, 23, 59, 59, tzinfo=UTC),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, as recorded in the pair list."""
        data = asdict(self)
        data["aoi"] = self.aoi.text()
        return data


@dataclass(frozen=True)
class DiscoveryResult:
    """Outcome of :func:`discover_pairs`.

    Attributes
    ----------
    params : DiscoveryParams
    scenes_found : tuple of Scene
        Every scene the search returned (after de-duplication), in time order.
    scenes_selected : tuple of Scene
        The scenes that passed every filter (one per month), in time order.
    pairs : tuple of Pair
        The pairs, ordered by reference time then secondary time.
    tile : str or None
        The MGRS tile used.
    filters : tuple of FilterCount
        What each filter removed, in the order applied.
    """

    params: DiscoveryParams
    scenes_found: tuple[Scene, ...]
    scenes_selected: tuple[Scene, ...]
    pairs: tuple[Pair, ...]
    tile: str | None
    filters: tuple[FilterCount, ...]

    def removed_by(self, name: str) -> int:
        """How many scenes (or, for ``baseline``, pairs) the named filter removed."""
        for step in self.filters:
            if step.name == name:
                return step.removed
        raise KeyError(f"no filter named {name!r}; filters: {[s.name for s in self.filters]}")

    def summary(self) -> str:
        """One line per filter, e.g. ``cloud_cover: 14 -> 11 (removed 3); > 20 %``."""
        return "\n".join(step.describe() for step in self.filters)


# --- Search ------------------------------------------------------------------------------------


def open_catalog(stac_url: str, policy: RetryPolicy | None = None, bound: SearchBound | None = None) -> Any:
    """Open a STAC API with timeouts, bounded retries and the token from the environment.

    Parameters
    ----------
    stac_url : str
        Root of the STAC API.
    policy : RetryPolicy, optional
        Attempts, backoff and timeouts; default :meth:`RetryPolicy.from_env`. Connection
        errors, timeouts and 429/5xx answers are retried; other answers are not.
    bound : SearchBound, optional
        Deadline and page count of the whole search every request of this client serves.

    Raises
    ------
    CatalogError
        Unreachable (after the retries), not JSON, or not a STAC API with item search. The
        message names the URL and, for network failures, the number of attempts.
    """
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.errors import ClientTypeError
    from pystac_client.exceptions import APIError

    policy = policy or RetryPolicy.from_env()
    hint = "check --stac-url (the root of a STAC API, e.g. https://earth-search.aws.element84.com/v1) and the network"
    try:
        client = Client.open(stac_url, stac_io=stac_api_io(stac_url, policy, bound))
    except APIError as exc:
        _raise_if_refused(exc, stac_url)
        status = getattr(exc, "status_code", None)
        if status is not None and status not in RETRY_STATUS:
            auth = "; set GLACIER_VELOCITY_STAC_TOKEN for a private catalogue" if status in (401, 403) else ""
            raise CatalogError(f"{stac_url} did not answer as a STAC API (HTTP {status}); {hint}{auth}") from exc
        reason = f"HTTP {status}" if status else _network_reason(str(exc))
        call = last_call()
        tried = call.describe() if call else f"after {policy.attempts} attempt(s)"
        where = f"{stac_url}" if call and call.cut else f"{stac_url} ({reason})"
        raise CatalogError(f"cannot reach the STAC API at {where} {tried}; {hint}") from exc
    except (ValueError, KeyError, TypeError, pystac.STACError, pystac.STACTypeError, ClientTypeError) as exc:
        raise CatalogError(f"{stac_url} did not answer as a STAC API ({_short(str(exc))}); {hint}") from exc
    if not client.conforms_to(ConformanceClasses.ITEM_SEARCH):
        raise CatalogError(f"{stac_url} is a STAC catalog but not a STAC API with item search; {hint}")
    return client


def _raise_if_refused(exc: BaseException, stac_url: str) -> None:
    """Raise the :class:`OutboundRefused` that pystac-client wrapped into ``exc``, if any.

    The API's own host is allowed (the user named it); a link or redirect of its answers to
    a non-public address of another host is refused before any request goes there.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OutboundRefused):
            raise seen.about(f"the STAC API at {stac_url}") from exc
        seen = seen.__cause__ or seen.__context__


def _network_reason(text: str) -> str:
    """A short reason for a requests/urllib3 failure (their messages run to hundreds of characters)."""
    lowered = text.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("connection reset", "connection reset"),
        ("remotedisconnected", "connection closed without an answer"),
        ("read timed out", "read timed out"),
        ("connect timeout", "connection timed out"),
        ("timed out", "timed out"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("temporary failure in name resolution", "host name not found"),
        ("too many 5", "server errors"),
        ("too many 429", "too many requests (HTTP 429)"),
    ):
        if needle in lowered:
            return reason
    return _short(text)


def _check_collection(client: Any, params: DiscoveryParams) -> None:
    from pystac_client.exceptions import APIError

    try:
        collection = client.get_collection(params.collection)
    except APIError as exc:
        _raise_if_refused(exc, params.stac_url)
        if getattr(exc, "status_code", None) not in (404, 400):
            raise CatalogError(
                f"cannot read collection {params.collection!r} from {params.stac_url} ({_short(str(exc))}); try again later"
            ) from exc
        collection = None
    except (KeyError, ValueError, pystac.STACError, pystac.STACTypeError):
        collection = None
    if collection is not None and collection.id == params.collection:
        return
    try:
        available = sorted(c.id for c in client.get_collections())
    except Exception:  # noqa: BLE001 - only used to improve the message
        available = []
    listing = ", ".join(available[:30]) if available else "none listed"
    raise InvalidParameter(
        "collection", f"{params.collection!r} is not a collection of {params.stac_url}; available: {listing}"
    )


def search_scenes(params: DiscoveryParams) -> list[Scene]:
    """Search the STAC API for scenes over the AOI in each season year.

    Parameters
    ----------
    params : DiscoveryParams

    Returns
    -------
    list of Scene
        Every item returned (no cloud, tile or footprint filtering yet), de-duplicated by id
        and sorted by time. At most ``params.max_items``.

    Raises
    ------
    CatalogError
        The API cannot be reached, does not answer as a STAC API, or fails during the search;
        or every item it returned was skipped (each item the workflow cannot use - malformed
        fields, no ``nir`` asset, an invalid footprint... - is skipped with a warning naming it
        and the reason, and the search goes on).
    InvalidParameter
        The collection does not exist in this API.
    """
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.exceptions import APIError

    policy = RetryPolicy.from_env()
    bound = SearchBound(
        deadline_s=policy.search_deadline_s,
        max_pages=len(params.years) + math.ceil(params.max_items / MIN_ITEMS_PER_PAGE),
        pages_rule=f"one per season year and one per {MIN_ITEMS_PER_PAGE} items of max_items {params.max_items}",
    )
    client = open_catalog(params.stac_url, policy, bound)
    _check_collection(client, params)
    use_query = client.conforms_to(ConformanceClasses.QUERY) and not params.aoi_cloud_cover
    found: dict[str, Scene] = {}
    skipped: list[tuple[str, str]] = []  # (quoted item id, reason) of each item skipped
    for season_year in params.years:
        start, end = params.season_interval(season_year)
        kwargs: dict[str, Any] = {
            "collections": [params.collection],
            "datetime": f"{format_datetime(start)}/{format_datetime(end)}",
            "max_items": params.max_items - len(found),
            "limit": SEARCH_PAGE_SIZE,
        }
        if params.aoi.is_box:
            kwargs["bbox"] = list(params.aoi.bbox)
        else:
            kwargs["intersects"] = params.aoi.geometry
        if use_query:
            kwargs["query"] = {"eo:cloud_cover": {"lte": params.max_cloud_cover}}
        try:
            for data in client.search(**kwargs).items_as_dicts():
                item_id = data.get("id") if isinstance(data, dict) else None
                if isinstance(item_id, str) and item_id in found:
                    continue
                try:
                    scene = Scene.from_item(data, fetched_from=params.stac_url)
                except InputError as exc:
                    # One bad item in a catalogue of thousands must not sink the search: every
                    # item the workflow cannot use is skipped the same way, with its reason.
                    skipped.append(_skip_reason(exc, item_id))
                    log.warning("item %s skipped: %s; the rest of the search goes on", *skipped[-1])
                    continue
                found[scene.id] = scene
        except json.JSONDecodeError as exc:
            raise CatalogError(
                f"the search at {params.stac_url} did not answer JSON (it is not a STAC API search, or a login page "
                "answered instead); check --stac-url and, for a private catalogue, GLACIER_VELOCITY_STAC_TOKEN"
            ) from exc
        except APIError as exc:
            _raise_if_refused(exc, params.stac_url)
            call = last_call()
            tried = call.describe() if call else f"after up to {RetryPolicy.from_env().attempts} attempt(s)"
            raise CatalogError(
                f"the search at {params.stac_url} failed ({_short(str(exc))}) {tried}; try again later or check --stac-url"
            ) from exc
        log.info(
            "season %d (%s/%s): %d item(s) so far",
            season_year,
            format_datetime(start),
            format_datetime(end),
            len(found),
        )
        if len(found) >= params.max_items:
            log.warning("stopped at max_items=%d items; raise max_items to search further", params.max_items)
            break
    if skipped and not found:
        first_id, first_reason = skipped[0]
        raise CatalogError(
            f"the search at {params.stac_url} returned {len(skipped)} item(s) and none is usable: every one was "
            f"skipped (the first, {first_id}: {first_reason}); the catalogue does not serve items the workflow can "
            "read - check --stac-url and --collection (Sentinel-2 L2A items as Earth Search v1 serves them)"
        )
    return sorted(found.values(), key=lambda s: (s.datetime, s.id))


def _skip_reason(error: InputError, item_id: object) -> tuple[str, str]:
    """(quoted item id, reason) of an item skipped by the search, for the warning and the error."""
    if isinstance(error, MalformedItem):
        return repr(error.item_id), f"{error.field}: {error.detail}"
    return (repr(item_id) if isinstance(item_id, str) else "'?'"), _short(str(error), 400)


# --- Filters ---------------------------------------------------------------------------------


def coverage_fraction(scene: Scene, aoi: BaseGeometry) -> float:
    """Fraction (0..1) of the AOI area inside the scene footprint (areas in degrees², lon/lat)."""
    footprint = shape(scene.geometry)
    if aoi.area == 0:
        return 1.0 if footprint.covers(aoi) else 0.0
    return float(footprint.intersection(aoi).area / aoi.area)


def choose_tile(scenes: Sequence[Scene], aoi: BaseGeometry) -> str | None:
    """The MGRS tile that covers the AOI best, then has the most scenes fully covering it.

    Ties go to the first tile name in alphabetical order, so the choice is deterministic.
    Returns None when ``scenes`` is empty.
    """
    coverage: dict[str | None, float] = defaultdict(float)
    full: dict[str | None, int] = defaultdict(int)
    for scene in scenes:
        fraction = coverage_fraction(scene, aoi)
        coverage[scene.tile] = max(coverage[scene.tile], fraction)
        full[scene.tile] += fraction >= 1.0 - _COVER_TOLERANCE
    if not coverage:
        return None
    return min(coverage, key=lambda t: (-round(coverage[t], 6), -full[t], t or ""))


def scl_cloud_cover(
    scl_href: str,
    aoi_geometry: dict[str, Any],
    outbound: OutboundPolicy | None = None,
    sensor: Sensor = SENTINEL_2,
) -> float | None:
    """Cloud cover over the AOI (%) from a scene classification raster (Sentinel-2 L2A SCL, or
    Landsat ``QA_PIXEL`` read as SCL classes).

    Parameters
    ----------
    scl_href : str
        Path or URL of the classification GeoTIFF/COG (read with
        :func:`glacier_velocity.io.raster.read_window`: only the AOI window, with its retries).
    aoi_geometry : dict
        AOI as GeoJSON in lon/lat degrees.
    outbound : OutboundPolicy, optional
        Where the read may connect (default: public addresses and the operator's allow-list).
    sensor : Sensor
        The band table's row of the scene: how its classification encodes the classes.

    Returns
    -------
    float or None
        100 x (pixels of classes 3, 8, 9, 10) / (pixels inside the AOI that are not 0 = no
        data); None when the AOI holds no valid pixel.

    Raises
    ------
    InputError
        The raster cannot be read, or the AOI lies outside it.
    """
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom

    # The whole pixels touching the AOI's bounding box, clipped to the raster (pixels outside
    # it would be no data anyway); the AOI polygon then picks the pixels it touches.
    scl = read_window(scl_href, aoi_geometry, label=f"{sensor.classification_assets[0]} asset", outbound=outbound)
    data = sensor.scl_classes(scl.array)
    local = transform_geom("EPSG:4326", scl.crs, aoi_geometry)
    inside = geometry_mask([local], out_shape=data.shape, transform=scl.transform, invert=True, all_touched=True)
    valid = inside & (data != SCL_NODATA)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    cloudy = int((valid & np.isin(data, SCL_CLOUD_CLASSES)).sum())
    return 100.0 * cloudy / n_valid


# --- The whole discovery -----------------------------------------------------------------------


def discover_pairs(
    params: DiscoveryParams,
    *,
    staged_items: str | os.PathLike[str] | None = None,
    item_urls: Sequence[str] | None = None,
) -> DiscoveryResult:
    """Search, filter, pick one scene per month and pair them (see the module notes).

    Parameters
    ----------
    params : DiscoveryParams
    staged_items : path-like, optional
        A Directory of staged STAC items (a ``catalog.json`` linking them, their assets beside
        them; :mod:`glacier_velocity.stac.staged`). With it or ``item_urls``, the STAC API is
        not searched: the given items that fall in a season and intersect the AOI take the
        search's place (step 1), and the other filters are the same.
    item_urls : sequence of str, optional
        http(s) URLs of STAC items, with or instead of ``staged_items``.

    Returns
    -------
    DiscoveryResult
        Scenes found and selected, pairs, and what each filter removed.

    Raises
    ------
    NoScenesFound
        A filter left no scene; the message lists every filter's count. The exception's
        ``filters`` attribute holds the :class:`FilterCount` steps.
    NoPairsFound
        Fewer than two scenes were selected, or the baseline range removed every pair.
    InvalidParameter
        ``max_pairs``: the selected scenes would give more pairs (checked before building them).
    CatalogError, InvalidParameter, InputError
        See :func:`search_scenes`.
    """
    aoi = params.aoi.shape
    if staged_items is not None or item_urls:
        given = given_scenes(staged_items, item_urls or ())
        intervals = [params.season_interval(year) for year in params.years]
        found = [
            s
            for s in given
            if any(start <= s.datetime <= end for start, end in intervals) and aoi.intersects(shape(s.geometry))
        ][: params.max_items]
        detail = f"given items in the seasons over the AOI ({_search_detail(params)}), of {len(given)} given"
    else:
        found = search_scenes(params)
        detail = _search_detail(params)
    steps: list[FilterCount] = [FilterCount("search", len(found), 0, detail)]

    def apply(name: str, before: Sequence[Scene], after: Sequence[Scene], detail: str) -> list[Scene]:
        steps.append(FilterCount(name, len(before), len(before) - len(after), detail))
        if not after:
            raise _no_scenes(params, steps)
        return list(after)

    if not found:
        raise _no_scenes(params, steps)
    scenes = list(found)
    if not params.aoi_cloud_cover:
        scenes = apply(
            "cloud_cover",
            scenes,
            [s for s in scenes if s.cloud_cover is not None and s.cloud_cover <= params.max_cloud_cover],
            f"tile cloud cover > {params.max_cloud_cover:g} % (or unknown)",
        )
    tile = params.tile or choose_tile(scenes, aoi)
    tiles_seen = sorted({s.tile or "?" for s in scenes})
    scenes = apply(
        "tile",
        scenes,
        [s for s in scenes if s.tile == tile],
        f"kept MGRS tile {tile} ({'asked for' if params.tile else 'covers the AOI best'}) of {', '.join(tiles_seen)}",
    )
    scenes = apply(
        "footprint",
        scenes,
        [s for s in scenes if coverage_fraction(s, aoi) >= 1.0 - _COVER_TOLERANCE],
        "footprint does not cover the whole AOI",
    )
    if params.aoi_cloud_cover:
        aoi_geometry = params.aoi.geometry
        outbound = OutboundPolicy.from_env(trusted=[params.stac_url])
        judged = [_with_aoi_cloud(s, aoi_geometry, outbound) for s in scenes]
        scenes = apply(
            "aoi_cloud_cover",
            scenes,
            [s for s in judged if _cloud_at_most(s, params.max_cloud_cover)],
            f"cloud over the AOI (scl) > {params.max_cloud_cover:g} %",
        )
    selected = apply(
        "month",
        scenes,
        select_monthly(scenes, params.years, params.months),
        f"not the first scene of its month, or outside months {params.start_month}-{params.end_month} of season years "
        f"{params.start_year}-{params.end_year}",
    )
    check_pair_count(
        selected, params.pairs_per_image, params.max_pairs, params.min_baseline_days, params.max_baseline_days
    )
    all_pairs = make_pairs(selected, params.pairs_per_image)
    if not all_pairs:
        raise NoPairsFound(
            f"only {len(selected)} scene passed the filters ({selected[0].id}); a pair needs two. "
            + _account(steps)
            + "; widen the years or months, or raise --max-cloud-cover"
        )
    pairs = filter_baseline(all_pairs, params.min_baseline_days, params.max_baseline_days)
    steps.append(FilterCount("baseline", len(all_pairs), len(all_pairs) - len(pairs), _baseline_detail(params)))
    if not pairs:
        baselines = sorted(p.dt_days for p in all_pairs)
        raise NoPairsFound(
            f"the baseline filter ({_baseline_detail(params)}) removed all {len(all_pairs)} pairs "
            f"(baselines {baselines[0]:.1f} to {baselines[-1]:.1f} days); widen --min-baseline-days/--max-baseline-days "
            "or raise --pairs-per-image. " + _account(steps)
        )
    result = DiscoveryResult(
        params=params,
        scenes_found=tuple(found),
        scenes_selected=tuple(selected),
        pairs=tuple(pairs),
        tile=tile,
        filters=tuple(steps),
    )
    log.info(
        "discovery: %d scene(s) found, %d selected, %d pair(s)\n%s",
        len(found),
        len(selected),
        len(pairs),
        result.summary(),
    )
    return result


def _with_aoi_cloud(scene: Scene, aoi_geometry: dict[str, Any], outbound: OutboundPolicy) -> Scene:
    if scene.classification_href is None:
        return scene
    try:
        value = scl_cloud_cover(scene.classification_href, aoi_geometry, outbound, scene.sensor)
    except InputError as exc:
        # One unreadable classification map should not end the discovery: fall back to the
        # tile's cloud cover and say so.
        log.warning("scene %s: %s; using the tile cloud cover instead", scene.id, exc)
        return scene
    if value is None:
        # No valid SCL pixel over the AOI: the scene has no data there.
        return replace(scene, aoi_cloud_cover=100.0)
    return replace(scene, aoi_cloud_cover=value)


def _cloud_at_most(scene: Scene, limit: float) -> bool:
    """Cloud over the AOI if known, else the tile's, is known and at most ``limit`` (%)."""
    cloud = scene.aoi_cloud_cover if scene.aoi_cloud_cover is not None else scene.cloud_cover
    return cloud is not None and cloud <= limit


_HINTS = {
    "search": "check the AOI, the years and months, and the collection",
    "cloud_cover": "raise --max-cloud-cover, or use --aoi-cloud-cover to judge cloud over the AOI only",
    "tile": "check --tile (it must be one of the tiles listed) or leave it out",
    "footprint": "make the AOI smaller so it lies inside one tile, or choose another --tile",
    "aoi_cloud_cover": "raise --max-cloud-cover or widen the season",
    "month": "widen --start-month/--end-month or the years",
}


def _no_scenes(params: DiscoveryParams, steps: list[FilterCount]) -> NoScenesFound:
    last = steps[-1]
    if last.name == "search":
        message = f"the search found no items in {params.collection!r} at {params.stac_url} ({last.detail})"
    else:
        message = f"no scenes left after the {last.name} filter: it removed all {last.before} ({last.detail})"
    return NoScenesFound(f"{message}. {_account(steps)}. Hint: {_HINTS[last.name]}", filters=tuple(steps))


def _account(steps: Sequence[FilterCount]) -> str:
    parts = []
    for step in steps:
        if step.name == "search":
            parts.append(f"search found {step.before}")
        else:
            parts.append(f"{step.name} removed {step.removed} of {step.before}")
    return "Filters: " + ", ".join(parts)


def _search_detail(params: DiscoveryParams) -> str:
    where = params.aoi.describe()
    first = params.season_interval(params.start_year)[0]
    last = params.season_interval(params.end_year)[1]
    return f"{where}, {first:%Y-%m-%d} to {last:%Y-%m-%d}, months {params.start_month}-{params.end_month}"


def _baseline_detail(params: DiscoveryParams) -> str:
    lo, hi = params.min_baseline_days, params.max_baseline_days
    if lo is None and hi is None:
        return "no baseline bounds"
    if hi is None:
        return f"baseline >= {lo:g} days"
    if lo is None:
        return f"baseline <= {hi:g} days"
    return f"baseline {lo:g} to {hi:g} days"


def _short(text: str, limit: int = 200) -> str:
    # Server answers may echo request headers: never let the token into a message.
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "DiscoveryParams",
    "DiscoveryResult",
    "FilterCount",
    "EARTH_SEARCH_URL",
    "check_stac_url",
    "choose_tile",
    "coverage_fraction",
    "discover_pairs",
    "open_catalog",
    "scl_cloud_cover",
    "search_scenes",
]
