"""Where an asset may be read from: the href checks every reader applies before opening anything.

A STAC item names its assets by href. Only http(s), s3, ``file://`` URLs and local paths are
asset locations; an item fetched over http(s) may name remote assets only (a remote catalogue
naming ``/etc/shadow`` would otherwise make the tool read this machine's files).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from ..errors import InputError

#: URL schemes accepted as asset locations; anything else (ftp:, data:, javascript:, ...) is
#: refused before GDAL or urllib could act on it.
ALLOWED_SCHEMES = ("http", "https", "s3", "file")


# GDAL virtual file systems a caller may name directly: in-memory files and the two network
# readers the schemes above map to. /vsistdin/, /vsisubfile/, archives and other handlers are
# not asset locations.
_ALLOWED_VSI = ("/vsimem/", "/vsicurl/http://", "/vsicurl/https://", "/vsis3/")


def check_asset_href(href: str, what: str = "asset") -> str:
    """Check that ``href`` is an http(s), s3, file URL or a local path, and return it.

    Parameters
    ----------
    href : str
        Asset location.
    what : str
        What the href is, for the message (e.g. ``"item 'S2A_...' asset 'nir'"``).

    Raises
    ------
    InputError
        Empty, another URL scheme (``ftp:``, ``data:``, ``javascript:``...), an s3 URL
        without a bucket, or a GDAL virtual path other than ``/vsimem/``, ``/vsicurl/`` of an
        http(s) URL and ``/vsis3/``.
    """
    if not isinstance(href, (str, os.PathLike)) or not os.fspath(href).strip():
        raise InputError(f"{what}: empty location {href!r}; give an http(s) or s3 URL or a local path")
    href = os.fspath(href)
    parsed = urlparse(href)
    scheme = parsed.scheme.lower()
    # One letter is a Windows drive ("C:\\..."), not a scheme.
    if scheme and len(scheme) > 1 and scheme not in ALLOWED_SCHEMES:
        raise InputError(
            f"{what}: unsupported URL scheme {scheme!r} in {href[:120]!r}; only http(s), s3 and local paths "
            "(or file://) are accepted as asset locations"
        )
    if scheme == "s3" and not parsed.netloc:
        raise InputError(f"{what}: {href!r}: an s3 URL needs a bucket, as in s3://bucket/key.tif")
    if href.startswith("/vsi") and not href.startswith(_ALLOWED_VSI):
        raise InputError(
            f"{what}: GDAL virtual path {href[:120]!r} is not accepted; give an http(s) or s3 URL or a local path"
        )
    return href


_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def is_remote_href(href: str) -> bool:
    """Whether an item location is an http(s) URL of another machine.

    A loopback URL (127.0.0.1, ::1, localhost) is this machine's own server - the demo's local
    STAC API serves items whose assets are local files - so it counts as local.
    """
    parsed = urlparse(os.fspath(href))
    return parsed.scheme.lower() in ("http", "https") and (parsed.hostname or "").lower() not in _LOOPBACK_HOSTS


def check_remote_item_asset(item_id: str, item_href: str, key: str, href: str) -> str:
    """Refuse a local asset location in an item fetched over http(s), and return ``href``.

    A remote catalogue naming ``/etc/shadow`` or ``file://...`` would otherwise make the tool
    read this machine's files. The message is the same whether that file exists or not.

    Raises
    ------
    InputError
        ``href`` is not an http(s) or s3 URL (or GDAL's ``/vsicurl/http(s)://``, ``/vsis3/``).
    """
    scheme = urlparse(href).scheme.lower()
    if scheme in ("http", "https", "s3") or href.startswith(_ALLOWED_VSI[1:]):
        return href
    raise InputError(
        f"item {item_id!r} was fetched over http(s) ({item_href}) and may only name http(s) or s3 assets, "
        f"not the local location {href[:120]!r} for {key!r}; local paths are accepted only in items read from local files"
    )
