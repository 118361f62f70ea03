"""Scenes from STAC items given to the run instead of searched for: staged or by URL.

A platform where the steps have no internet (an ADES whose pods reach only its own storage)
stages the input products before the run: a ``Directory`` holding a STAC catalog,
``catalog.json`` at the top, whose item links lead to the items and whose items name their
asset files by relative hrefs (the OGC Best Practice for EO Application Packages). A client may
also pass the items' URLs. Either replaces the STAC API search in discovery; the rest of it -
cloud cover, tile, footprint, one scene a month, pairs - is the same.

A staged Directory is staged again into each correlation step, at another path: the pairs
name its items by their paths relative to the Directory (:func:`staged_scenes`), and the
correlation step joins them to its own copy (:func:`staged_href`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from ..errors import InputError, InvalidParameter
from .scene import Scene, read_item

log = logging.getLogger(__name__)

#: The catalog at the top of a staged Directory (OGC Best Practice), or a single item.
CATALOG_FILE = "catalog.json"
ITEM_FILE = "item.json"
#: Deepest chain of child catalogs followed in a staged Directory.
MAX_CATALOG_DEPTH = 8


def staged_item_files(root: str | os.PathLike[str]) -> list[Path]:
    """The item files of a staged Directory, in catalog order.

    ``root/catalog.json``'s ``item`` links (and its ``child`` catalogs', up to
    :data:`MAX_CATALOG_DEPTH` deep), or ``root/item.json`` alone. Links must be relative hrefs
    to files inside ``root``: a staged product is self-contained.

    Raises
    ------
    InvalidParameter
        Named ``staged_items``: not a directory, neither file at its top, unreadable JSON, or a
        link that is absolute, remote or leads outside the Directory or to no file.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise InvalidParameter("staged_items", f"{str(root)!r} is not a directory; give the Directory of staged items")
    if not (root / CATALOG_FILE).is_file():
        if (root / ITEM_FILE).is_file():
            return [root / ITEM_FILE]
        raise InvalidParameter(
            "staged_items",
            f"{str(root)!r} holds neither {CATALOG_FILE} nor {ITEM_FILE}; give the Directory a stage-in wrote "
            "(a STAC catalog.json linking the items, whose assets are files beside them)",
        )
    items: list[Path] = []
    pending = [(root / CATALOG_FILE, 0)]
    seen: set[Path] = set()
    while pending:
        catalog, depth = pending.pop(0)
        if catalog in seen:
            continue
        seen.add(catalog)
        try:
            links = json.loads(catalog.read_text(encoding="utf-8")).get("links", [])
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
            raise InvalidParameter("staged_items", f"cannot read the catalog {str(catalog)!r} ({exc})") from exc
        for link in links if isinstance(links, list) else []:
            rel = link.get("rel") if isinstance(link, dict) else None
            if rel not in ("item", "child"):
                continue
            target = _inside(root, catalog, link.get("href"))
            if rel == "item":
                items.append(target)
            elif depth + 1 < MAX_CATALOG_DEPTH:
                pending.append((target, depth + 1))
    return items


def _inside(root: Path, document: Path, href: object) -> Path:
    if not isinstance(href, str) or urlparse(href).scheme or os.path.isabs(href):
        raise InvalidParameter(
            "staged_items", f"{href!r} in {str(document)!r} is not a relative href; a staged catalog is self-contained"
        )
    target = (document.parent / href).resolve()
    if root not in target.parents or not target.is_file():
        raise InvalidParameter(
            "staged_items", f"{href!r} in {str(document)!r} does not lead to a file inside {str(root)!r}"
        )
    return target


def given_scenes(staged_items: str | os.PathLike[str] | None, item_urls: Sequence[str]) -> list[Scene]:
    """Every usable scene of the staged Directory and the item URLs, sorted by time.

    A staged scene's ``self_href`` is its item's path relative to the Directory (what a pair
    records; :func:`staged_href` joins it again); a scene from a URL keeps its URL. An item the
    workflow cannot use (no ``nir`` asset, malformed fields...) is skipped with a warning, as in
    a search; an item given twice counts once.

    Raises
    ------
    InvalidParameter
        The Directory is not a staged catalog (:func:`staged_item_files`), an item URL is not
        http(s), or not one usable item was given.
    InputError
        An item URL cannot be fetched (the message names it).
    """
    sources: list[tuple[str, str | None]] = []  # (where to read, relative href when staged)
    if staged_items is not None:
        root = Path(staged_items).resolve()
        sources += [(str(path), path.relative_to(root).as_posix()) for path in staged_item_files(root)]
    for url in item_urls:
        if urlparse(str(url)).scheme not in ("http", "https"):
            raise InvalidParameter("item_urls", f"{str(url)[:120]!r} is not an http(s) URL of a STAC item")
        sources.append((str(url), None))
    scenes: dict[str, Scene] = {}
    skipped: list[str] = []
    for where, relative in sources:
        item = read_item(where, role="given item")
        try:
            scene = Scene.from_item(item, fetched_from=where if relative is None else None)
        except InputError as exc:
            skipped.append(f"{item.id}: {exc}")
            log.warning("item %s skipped: %s", item.id, exc)
            continue
        scenes.setdefault(scene.id, replace(scene, self_href=relative) if relative is not None else scene)
    if not scenes:
        given = f"{len(sources)} item(s)" + (f", every one skipped (the first, {skipped[0]})" if skipped else "")
        raise InvalidParameter(
            "staged_items" if staged_items is not None else "item_urls",
            f"no usable Sentinel-2 item among the {given}; give items with a 'nir' asset",
        )
    return sorted(scenes.values(), key=lambda s: (s.datetime, s.id))


def staged_href(href: str, staged_items: str | os.PathLike[str] | None) -> str:
    """Where a pair's item is in this step: ``href`` joined to the staged Directory when it is
    relative and one is given, else ``href`` as it is (a URL or a path).

    Raises
    ------
    InputError
        A relative ``href`` leading outside the staged Directory.
    """
    if staged_items is None or urlparse(href).scheme or os.path.isabs(href):
        return href
    root = Path(staged_items).resolve()
    target = (root / href).resolve()
    if root not in target.parents:
        raise InputError(f"item {href!r} leads outside the staged items {str(root)!r}")
    return str(target)
