"""One acquisition as the workflow sees it: a STAC item reduced to what it needs.

A :class:`Scene` is built once from a STAC item (:meth:`Scene.from_item`) and then passed
between stages; it also round-trips through the pair list JSON (:meth:`Scene.to_dict`,
:meth:`Scene.from_dict`). Which asset is tracked and which classifies the pixels comes from the
band table (:mod:`glacier_velocity.domain.sensors`), by the item's mission:

- Sentinel-2 (Earth Search v1 ``sentinel-2-l2a``): the near-infrared band B08 (10 m) is the
  asset ``nir``, the scene classification map ``scl`` (20 m);
- Landsat 8/9 OLI (Collection 2 Level-1, USGS ``landsat-c2l1``): the panchromatic band B8
  (15 m) is ``pan``, the ``QA_PIXEL`` bit flags ``qa_pixel`` (30 m).

Field conventions follow Earth Search v1 and the USGS STAC server:

- the tile comes from ``grid:code`` (``"MGRS-43SEA"``, ``"WRS2-063018"``), else from the
  ``mgrs:*`` or ``landsat:wrs_path``/``landsat:wrs_row`` properties, else from the item id or
  ``s2:product_uri``;
- the EPSG code comes from ``proj:epsg`` (projection extension v1) or ``proj:code``
  (``"EPSG:32643"``, v2), on the item or on the tracked asset.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import pystac
import shapely
from shapely.geometry import shape

from ..domain.dates import format_datetime, parse_datetime
from ..domain.hrefs import check_asset_href, check_remote_item_asset, is_remote_href
from ..domain.sensors import SENSORS, SENTINEL_2, Sensor, sensor_of
from ..errors import InputError, MalformedItem, OutboundRefused
from ..io.retry import TOKEN_ENV, RetryPolicy, http_session, last_call, redact

# Earth Search ids look like S2B_43SEA_20200922_0_L2A; product URIs hold _T43SEA_.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TILE_IN_ID = re.compile(r"(?:^|_)(\d{2}[C-X][A-Z]{2})(?:_|$)")
_TILE_IN_PRODUCT_URI = re.compile(r"_T(\d{2}[C-X][A-Z]{2})_")
# Landsat ids hold the WRS-2 path and row: LC08_L1TP_063018_... and LC80630182016200LGN00.
_WRS_IN_LANDSAT_ID = re.compile(r"^L[COTEM]0\d_[A-Z0-9]{4}_(\d{6})_|^L[COTEM]\d(\d{6})\d{7}[A-Z]{3}\d{2}$")


@dataclass(frozen=True)
class Scene:
    """An acquisition: identity, time, where its bands are, and its footprint.

    Attributes
    ----------
    id : str
        STAC item id, e.g. ``"S2B_43SEA_20200922_0_L2A"``.
    datetime : datetime
        Acquisition time, timezone-aware, UTC.
    self_href : str or None
        URL (or local path) of the STAC item itself; None when the item has no self link.
    band_href : str
        Absolute href of the tracked band's COG (:attr:`sensor`'s: Sentinel-2 B08, 10 m;
        Landsat 8/9 B8, 15 m).
    classification_href : str or None
        Absolute href of the pixel classification's COG (Sentinel-2 SCL, Landsat ``QA_PIXEL``),
        when the item has one; :meth:`~glacier_velocity.domain.sensors.Sensor.scl_classes` reads
        it as SCL classes.
    cloud_cover : float or None
        Cloud cover of the whole tile (%, 0-100) from ``eo:cloud_cover``; None if absent.
    tile : str or None
        MGRS tile (``"43SEA"``) or Landsat WRS-2 path and row (``"063018"``); None when it
        cannot be determined.
    epsg : int or None
        EPSG code of the scene's projected grid, e.g. 32643.
    geometry : dict
        Footprint as a GeoJSON geometry, lon/lat (EPSG:4326).
    product_uri : str or None
        ESA product name (``s2:product_uri``), when given.
    aoi_cloud_cover : float or None
        Cloud cover over the area of interest (%, 0-100) judged from the classification asset,
        when discovery was asked to compute it; None otherwise.
    sensor_key : str
        The band table's row of the mission (:data:`~glacier_velocity.domain.sensors.SENSORS`):
        ``"sentinel-2"`` or ``"landsat-oli"``.
    """

    id: str
    datetime: datetime
    self_href: str | None
    band_href: str
    classification_href: str | None
    cloud_cover: float | None
    tile: str | None
    epsg: int | None
    # A dict is unhashable; scenes stay hashable through their other fields.
    geometry: dict[str, Any] = field(hash=False, repr=False)
    product_uri: str | None = None
    aoi_cloud_cover: float | None = None
    sensor_key: str = SENTINEL_2.key

    def __post_init__(self) -> None:
        if self.sensor_key not in SENSORS:
            raise InputError(f"scene {self.id!r}: unknown sensor {self.sensor_key!r}; one of {', '.join(SENSORS)}")
        if self.datetime.tzinfo is None:
            raise InputError(
                f"scene {self.id!r}: datetime {self.datetime.isoformat()} has no time zone; give it in UTC"
            )
        if self.datetime.utcoffset() != UTC.utcoffset(None):
            object.__setattr__(self, "datetime", self.datetime.astimezone(UTC))
        band_key, classification_key = self.sensor.band_assets[0], self.sensor.classification_assets[0]
        check_asset_href(self.band_href, f"scene {self.id!r} asset {band_key!r}")
        if self.classification_href is not None:
            check_asset_href(self.classification_href, f"scene {self.id!r} asset {classification_key!r}")
        if self.self_href is not None and is_remote_href(self.self_href):
            for key, href in ((band_key, self.band_href), (classification_key, self.classification_href)):
                if href is not None:
                    check_remote_item_asset(self.id, self.self_href, key, href)

    @property
    def sensor(self) -> Sensor:
        """The band table's row of the scene's mission."""
        return SENSORS[self.sensor_key]

    @classmethod
    def from_item(cls, item: pystac.Item | dict[str, Any], fetched_from: str | None = None) -> Scene:
        """Build a scene from a STAC item.

        Parameters
        ----------
        item : pystac.Item or dict
            An Earth-Search-like Sentinel-2 L2A item or a Landsat 8/9 Collection 2 Level-1 item
            (or its JSON as a dict).
        fetched_from : str, optional
            URL the item came from (a search or the item itself). An item fetched over http(s)
            must have an http(s) self href and may only name http(s) or s3 assets, whatever
            its own links claim (:func:`~glacier_velocity.domain.hrefs.check_remote_item_asset`).

        Returns
        -------
        Scene

        Raises
        ------
        MalformedItem
            The item is not a JSON object, or a field the workflow reads has the wrong form
            (:func:`check_item_fields`): no tracked band (``nir`` for Sentinel-2, ``pan`` for
            Landsat 8/9), a Landsat mission other than 8/9, no datetime, a footprint that is not
            a valid polygon (:func:`check_footprint`), ...; the error names the item and the field.
        InputError
            An asset href is not an http(s), s3 or local location (:func:`~glacier_velocity.domain.hrefs.check_asset_href`).
        """
        if isinstance(item, pystac.Item):
            check_item_fields(
                {
                    "id": item.id,
                    "properties": {k: v for k, v in item.properties.items() if "datetime" not in k}
                    | {"datetime": "1970-01-01T00:00:00Z"},
                }
            )
        else:
            data = item
            check_item_structure(data)
            check_item_fields(data)
            try:
                item = pystac.Item.from_dict(data)
            except (KeyError, TypeError, ValueError, AttributeError, pystac.STACError) as exc:
                # The checks above cover the fields the workflow reads; this is anything else
                # pystac cannot parse (a catalogue's own malformed extension fields...).
                raise MalformedItem(
                    data["id"], "item", f"is not a STAC item ({type(exc).__name__}: {_brief(exc)})"
                ) from None
        props = item.properties
        sensor = sensor_of(item.id, props)
        band_key = sensor.band_asset(item.assets)
        if band_key is None:
            wanted = " or ".join(repr(key) for key in sensor.band_assets)
            raise MalformedItem(
                item.id,
                "assets",
                f"no {wanted} asset (it has: {', '.join(sorted(item.assets)) or 'none'}); {sensor.missing_band}",
            )
        band = item.assets[band_key]
        classification_key = sensor.classification_asset(item.assets)
        when = item.datetime or parse_datetime(props.get("start_datetime"))
        if when is None:
            raise MalformedItem(item.id, "datetime", "none given; cannot place the scene in time")
        if when.tzinfo is None:
            # STAC datetimes are UTC by definition (RFC 3339 with Z).
            when = when.replace(tzinfo=UTC)
        check_footprint(item.id, item.geometry)
        assert item.geometry is not None  # checked just above
        cloud = props.get("eo:cloud_cover")
        product_uri = props.get("s2:product_uri")
        self_href = item.get_self_href()
        if fetched_from is not None and is_remote_href(fetched_from) and not (self_href and is_remote_href(self_href)):
            # A remote item claiming a local self href would pass for a local item.
            raise InputError(
                f"item {item.id!r} was fetched over http(s) ({fetched_from}) but its self link is "
                f"{str(self_href)[:120]!r}; an item from a STAC API must link to itself over http(s)"
            )
        return cls(
            id=item.id,
            datetime=when.astimezone(UTC),
            self_href=self_href,
            band_href=_asset_href(band),
            classification_href=_asset_href(item.assets[classification_key]) if classification_key else None,
            cloud_cover=float(cloud) if cloud is not None else None,
            tile=_tile_of(item.id, props),
            epsg=_epsg_of(props, item.id) or _epsg_of(band.extra_fields, item.id),
            geometry=dict(item.geometry),
            product_uri=str(product_uri) if product_uri else None,
            sensor_key=sensor.key,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``href`` is the item's self href (see :meth:`from_dict`)."""
        return {
            "id": self.id,
            "href": self.self_href,
            "datetime": format_datetime(self.datetime),
            "cloud_cover": self.cloud_cover,
            "tile": self.tile,
            "epsg": self.epsg,
            "sensor": self.sensor_key,
            "band_href": self.band_href,
            "classification_href": self.classification_href,
            "product_uri": self.product_uri,
            "aoi_cloud_cover": self.aoi_cloud_cover,
            "geometry": self.geometry,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InputError
            A required key is missing or a value has the wrong form.
        """
        try:
            when = parse_datetime(data["datetime"])
            if when is None:
                raise ValueError("datetime is empty")
            cloud = data.get("cloud_cover")
            aoi_cloud = data.get("aoi_cloud_cover")
            epsg = data.get("epsg")
            return cls(
                id=str(data["id"]),
                datetime=when,
                self_href=data.get("href"),
                band_href=str(data["band_href"]),
                classification_href=data.get("classification_href"),
                cloud_cover=float(cloud) if cloud is not None else None,
                tile=data.get("tile"),
                epsg=int(epsg) if epsg is not None else None,
                geometry=dict(data["geometry"]),
                product_uri=data.get("product_uri"),
                aoi_cloud_cover=float(aoi_cloud) if aoi_cloud is not None else None,
                sensor_key=str(data.get("sensor", SENTINEL_2.key)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"scene record {data.get('id', '?')!r} is malformed ({exc!r}); re-create it with 'glacier-velocity discover'"
            ) from exc


#: Deepest nesting of JSON objects and arrays accepted in one item. A Sentinel-2 item needs
#: about 8 (item, assets, an asset, raster:bands, a band, ...; a MultiPolygon's coordinates
#: are 4 deep); deeper is malformed, and past a few hundred levels Python's own recursion
#: (pystac's copy of the item) would fail with a traceback.
MAX_ITEM_DEPTH = 32


def check_item_structure(data: Any) -> None:
    """Check that a search answer's entry has the shape of a STAC item, before pystac reads it.

    Raises
    ------
    MalformedItem
        ``data`` is not a JSON object; its ``id`` is not a non-empty string; it is nested more
        than :data:`MAX_ITEM_DEPTH` levels deep; ``assets`` is not an object of objects each
        with a string ``href``; or ``links`` is not a list of objects with string ``rel`` and
        ``href``. The error names the item (``'?'`` when it has no usable id) and the field.
    """
    if not isinstance(data, dict):
        raise MalformedItem("?", "entry", f"{_brief(data)} is not a JSON object")
    item_id = data.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        raise MalformedItem("?", "id", f"{_brief(item_id)} is not an item id (a non-empty string)")
    if _deeper_than(data, MAX_ITEM_DEPTH):
        raise MalformedItem(
            item_id,
            "nesting",
            f"more than {MAX_ITEM_DEPTH} levels of objects and arrays (a Sentinel-2 item needs about 8)",
        )
    assets = data.get("assets")
    if not isinstance(assets, dict):
        raise MalformedItem(item_id, "assets", f"{_brief(assets)} is not a JSON object of assets")
    for key, asset in assets.items():
        href = asset.get("href") if isinstance(asset, dict) else None
        if not isinstance(href, str):
            what = f"its href {_brief(href)}" if isinstance(asset, dict) else _brief(asset)
            raise MalformedItem(item_id, f"assets.{key}", f"{what} is not a location (a URL or path string)")
    links = data.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(link, dict) and isinstance(link.get("rel"), str) and isinstance(link.get("href"), str)
        for link in links
    ):
        raise MalformedItem(item_id, "links", f"{_brief(links)} is not a list of links (objects with rel and href)")


def check_footprint(item_id: str, geometry: Any) -> None:
    """Check that an item's geometry is a valid, non-empty (Multi)Polygon in lon/lat.

    A self-intersecting ring (a bow-tie) makes every overlay with the AOI fail in GEOS; a
    null geometry cannot say whether the scene covers the AOI.

    Raises
    ------
    MalformedItem
        Null, unreadable as GeoJSON, not an area, empty, or invalid (the reason is GEOS's).
    """
    if geometry is None:
        raise MalformedItem(item_id, "geometry", "null; cannot tell whether the scene covers the area of interest")
    try:
        footprint = shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
        raise MalformedItem(
            item_id, "geometry", f"{_brief(geometry)} is not a readable GeoJSON geometry ({_brief(exc)})"
        ) from None
    if footprint.geom_type not in ("Polygon", "MultiPolygon") or footprint.is_empty:
        raise MalformedItem(
            item_id, "geometry", f"is {footprint.geom_type}{' (empty)' if footprint.is_empty else ''}, not an area"
        )
    if not footprint.is_valid:
        raise MalformedItem(
            item_id,
            "geometry",
            f"is not a valid polygon ({shapely.is_valid_reason(footprint)}, e.g. a ring crossing itself)",
        )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests objects and arrays more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _brief(value: Any, limit: int = 80) -> str:
    """A short repr of a value from an untrusted answer, for a message."""
    text = repr(value) if not isinstance(value, BaseException) else " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_item_fields(data: dict[str, Any]) -> None:
    """Check the form of the item fields the workflow reads, before anything parses them.

    Raises
    ------
    MalformedItem
        ``datetime`` (absent without ``start_datetime``, or not an RFC 3339 date-time),
        ``proj:epsg``, ``eo:cloud_cover`` or ``mgrs:utm_zone`` has a value of the wrong form;
        the error names the item and the field.
    """
    item_id = str(data.get("id", "?"))
    props = data.get("properties") or {}
    if not isinstance(props, dict):
        raise MalformedItem(item_id, "properties", f"{props!r} is not a JSON object")
    name = "datetime" if props.get("datetime") is not None or props.get("start_datetime") is None else "start_datetime"
    if name in props or "start_datetime" not in props:
        value = props.get(name)
        try:
            if parse_datetime(value) is None:
                raise ValueError("no datetime")
        except (TypeError, ValueError):
            raise MalformedItem(
                item_id, name, f"{value!r} is not a date and time (RFC 3339, e.g. 2020-06-01T05:36:29Z)"
            ) from None
    for name, check, expected in _FIELD_CHECKS:
        if props.get(name) is not None and not check(props[name]):
            raise MalformedItem(item_id, name, f"{props[name]!r} is not {expected}")


def _is_int_in(low: int, high: int) -> Any:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        return isinstance(value, int) and low <= value <= high

    return check


def _is_percentage(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return 0 <= value <= 100


#: Fields read by :meth:`Scene.from_item`: (name, check, what a valid value is).
_FIELD_CHECKS = (
    ("proj:epsg", _is_int_in(1024, 999999), "an EPSG code (an integer, e.g. 32643)"),
    ("eo:cloud_cover", _is_percentage, "a cloud cover percentage (a number 0-100)"),
    # 1-60 on Earth; the demo stack uses the fictional zone 99 (tile 99XXX).
    ("mgrs:utm_zone", _is_int_in(1, 99), "a UTM zone (a whole number 1-99)"),
)


def read_item(href: str | os.PathLike[str], role: str = "item", stac_url: str | None = None) -> pystac.Item:
    """Read a STAC item from an http(s) URL, a ``file://`` URL or a local JSON file.

    Remote items are fetched with the timeouts and bounded retries of
    :class:`~glacier_velocity.io.retry.RetryPolicy` (connection errors, timeouts, 429/5xx), from
    public addresses or the host of ``stac_url`` only (:mod:`glacier_velocity.io.outbound`). The
    STAC token (``GLACIER_VELOCITY_STAC_TOKEN``), when set, goes with the request only if
    ``href`` is on the origin of ``stac_url`` (the private API the pair was found in); an item
    on any other host, or a redirect to one, never receives it. The item's self href is set
    to ``href`` when it has none, so relative asset hrefs resolve.

    Parameters
    ----------
    href : str or path-like
        Where the item is.
    role : str
        What the item is for (``"reference"``, ``"secondary"``), for messages.
    stac_url : str, optional
        Root of the STAC API the item comes from; None sends the token nowhere.

    Raises
    ------
    InputError
        Another URL scheme, a missing file, an answer that is not a STAC item, or a server
        still failing after the retries; the message names ``role`` and ``href``
        (:class:`~glacier_velocity.errors.OutboundRefused` for a non-public address).
    """
    text = os.fspath(href)
    scheme = urlparse(text).scheme.lower()
    if scheme and len(scheme) > 1 and scheme not in ("http", "https", "file"):
        raise InputError(
            f"{role}: unsupported URL scheme {scheme!r} in {text[:120]!r}; give an http(s) URL or a local item JSON file"
        )
    if scheme in ("http", "https"):
        import requests

        policy = RetryPolicy.from_env()
        try:
            with http_session(policy, stac_url) as session:
                answer = session.get(text, timeout=(policy.connect_timeout_s, policy.read_timeout_s))
        except OutboundRefused as exc:
            raise exc.about(f"{role}: cannot fetch the STAC item {text!r}") from None
        except requests.RequestException as exc:
            call = last_call()
            tried = call.describe() if call else f"after {policy.attempts} attempt(s)"
            raise InputError(
                f"{role}: cannot fetch the STAC item {text!r} {tried} "
                f"({type(exc).__name__}); check the URL and the network, or try again later"
            ) from exc
        if answer.status_code != 200:
            call = last_call()
            attempts = call.attempts if call else policy.attempts
            retried = f" after {attempts} attempt(s)" if answer.status_code in (429, 500, 502, 503, 504) else ""
            hint = "check the URL"
            if answer.status_code in (401, 403):
                hint = (
                    f"a private catalogue: set {TOKEN_ENV}, which is sent to the origin of the STAC API "
                    f"(stac_url {stac_url}) only"
                    if stac_url
                    else f"a private catalogue: set {TOKEN_ENV} and give the API's stac_url (the token is sent to its origin only)"
                )
            raise InputError(
                f"{role}: cannot fetch the STAC item {text!r} (HTTP {answer.status_code}){retried}; {hint}"
            )
        try:
            data = answer.json()
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{role}: {text!r} did not answer JSON; give the URL of a STAC item") from exc
        self_href = text
    else:
        path = urlparse(text).path if scheme == "file" else text
        if not os.path.isfile(path):
            raise InputError(f"{role}: {text!r} is neither an existing item JSON file nor a URL")
        try:
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InputError(
                f"{role}: cannot read the STAC item {text!r} ({type(exc).__name__}: {_brief(exc, 200)})"
            ) from exc
        # An absolute self href lets relative asset hrefs resolve from any working directory.
        self_href = os.path.abspath(path)
    check_item_structure(data)
    try:
        item = pystac.Item.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError, pystac.STACError) as exc:
        raise InputError(f"{role}: {text!r} is not a STAC item ({redact(str(exc))[:200]})") from exc
    if item.get_self_href() is None or scheme in ("http", "https"):
        # Where a remote item really came from, not where its own links say: a self link to a
        # local file would make it pass for a local item.
        item.set_self_href(self_href)
    return item


def _asset_href(asset: pystac.Asset) -> str:
    href = asset.href
    # Absolute local paths and URLs are kept as they are: resolving "/data/B08.tif" against an
    # item served over http would wrongly turn it into "http://host/data/B08.tif".
    if _SCHEME.match(href) or os.path.isabs(href):
        return href
    return asset.get_absolute_href() or href


def _tile_of(item_id: str, props: dict[str, Any]) -> str | None:
    grid = props.get("grid:code")
    if isinstance(grid, str) and grid.upper().startswith(("MGRS-", "WRS2-")):
        return grid[5:].upper()
    zone, band, square = props.get("mgrs:utm_zone"), props.get("mgrs:latitude_band"), props.get("mgrs:grid_square")
    if zone is not None and band and square:
        return f"{int(zone):02d}{band}{square}".upper()
    path, row = str(props.get("landsat:wrs_path")), str(props.get("landsat:wrs_row"))
    if path.isdigit() and row.isdigit():
        return f"{int(path):03d}{int(row):03d}"
    match = _WRS_IN_LANDSAT_ID.search(item_id)
    if match:
        return match.group(1) or match.group(2)
    match = _TILE_IN_ID.search(item_id)
    if match:
        return match.group(1)
    match = _TILE_IN_PRODUCT_URI.search(str(props.get("s2:product_uri") or ""))
    if match:
        return match.group(1)
    return None


def _epsg_of(fields: dict[str, Any], item_id: str = "?") -> int | None:
    """EPSG code from ``proj:epsg`` or ``proj:code`` (``"EPSG:32643"``) of an item or asset."""
    epsg = fields.get("proj:epsg")
    if epsg is None:
        code = fields.get("proj:code")
        if not (isinstance(code, str) and code.upper().startswith("EPSG:")):
            return None
        epsg = code.split(":", 1)[1]
    if not _is_int_in(1024, 999999)(epsg):
        raise MalformedItem(item_id, "proj:epsg", f"{_brief(epsg)} is not an EPSG code (an integer, e.g. 32643)")
    return int(epsg)
