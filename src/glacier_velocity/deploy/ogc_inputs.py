"""What a client of the OGC API - Processes server may give: values, never the server's files.

The command line and CWL take the path of a GeoJSON file for ``aoi``, ``glacier_outlines`` and
``points_of_interest``; a client of the server must not, or it could make the server read its
own files (``/etc/shadow``, ``/proc/self/environ``) and tell from the answers which exist. So
:func:`check_inputs` accepts, for those inputs, only the value itself - GeoJSON (text or a JSON
object), ``W,S,E,N`` for ``aoi``, ``lon,lat; lon,lat`` for ``points_of_interest`` - or an
http(s) URL. Anything else (a path, ``file:``, another scheme) is refused with one message that
says nothing about the server's files: nothing is looked up.

URLs (these and ``stac_url``) must lead to public addresses or to what the operator allows
(:mod:`glacier_velocity.io.outbound`; the jobs run with ``GLACIER_VELOCITY_TRUST_GIVEN_HOSTS=0``,
so the hosts a client names get no trust either). Then every value goes through the library's
own checks (the ``*Params`` dataclasses), so a month 13 is a 400 naming ``start_month`` before
any job starts, not a failed run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ..errors import InvalidParameter, OutboundRefused
from ..io.outbound import TRUST_ENV, OutboundPolicy

#: Inputs that the command line reads as a file path, URL or text; here a value or a URL.
GEOJSON_INPUTS = ("aoi", "glacier_outlines", "points_of_interest")
_NUMBER = r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"
_BBOX = re.compile(rf"^{_NUMBER}(?:,{_NUMBER}){{3}}$")
_POINTS = re.compile(rf"^{_NUMBER},{_NUMBER}(?:;{_NUMBER},{_NUMBER})*;?\s*$")
_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)


def value_forms(name: str) -> str:
    """The values a client may give for the GeoJSON input ``name``, in words."""
    extra = {"aoi": ", W,S,E,N", "points_of_interest": ", lon,lat; lon,lat"}.get(name, "")
    return f"GeoJSON (text or a JSON object){extra}"


def _geojson_value(name: str, value: Any, outbound: OutboundPolicy) -> str:
    """The value of a GeoJSON input as the workflow takes it (text or URL), checked."""
    if isinstance(value, Mapping) and set(value) == {"href"}:
        # A value by reference is a URL like any other: the workflow reads it under the outbound
        # policy. Never a CWL File: cwltool would fetch its location itself, outside the policy.
        value = value["href"]
    if isinstance(value, Mapping):
        return json.dumps(value)
    text = value if isinstance(value, str) else ""
    if text.lstrip().startswith("{"):
        return text
    if name == "aoi" and _BBOX.match(text) or name == "points_of_interest" and _POINTS.match(text):
        return text
    if _URL.match(text):
        _check_url(name, text, outbound)
        return text
    # The same words whatever was given: the answer must not tell what exists on the server.
    raise InvalidParameter(
        name,
        f"give the value itself - {value_forms(name)} - or an http(s) URL; this service reads no file of its "
        "own, so paths and file: URLs are refused",
    )


def _check_url(name: str, url: str, outbound: OutboundPolicy) -> None:
    try:
        outbound.check_url(url)
    except OutboundRefused as exc:
        raise InvalidParameter(name, str(exc)) from None


def unwrap(value: Any) -> Any:
    """A qualified value ``{"value": x, "mediaType": ...}`` as ``x``; anything else as it is."""
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "mediaType", "encoding", "schema"}:
        return value["value"]
    return value


def check_inputs(
    inputs: Mapping[str, Any], described: Mapping[str, Any], outbound: OutboundPolicy | None = None
) -> dict[str, Any]:
    """The inputs of an execute request as workflow values, every one checked.

    Parameters
    ----------
    inputs : mapping
        ``inputs`` of the request.
    described : mapping
        The process description's ``inputs`` (name -> description with ``minOccurs``).
    outbound : OutboundPolicy, optional
        Where URLs may lead; default the operator's allow-list only (no trust in the hosts a
        client names).

    Returns
    -------
    dict
        Input name -> value (numbers, strings, booleans, None).

    Raises
    ------
    InvalidParameter
        An unknown or missing input, a path or ``file:`` where a value is expected, a URL to a
        non-public address, or a value the library refuses; the message names the input.
    """
    from ..stac.discovery import DiscoveryParams, check_stac_url
    from ..workflow.aggregate import AggregationParams
    from ..workflow.correlate import CorrelationParams

    # The operator's allow-list, and no trust in the hosts a client names (as in its job's steps).
    outbound = outbound or OutboundPolicy.from_env(environ={**os.environ, TRUST_ENV: "0"})
    if not isinstance(inputs, Mapping):
        raise InvalidParameter("inputs", "must be a JSON object of input name -> value")
    values: dict[str, Any] = {}
    for name, given in inputs.items():
        if name not in described:
            raise InvalidParameter(
                name, f"glacier-velocity has no input {name!r}; its inputs are {', '.join(described)}"
            )
        value = unwrap(given)
        if value is not None and name in GEOJSON_INPUTS:
            value = _geojson_value(name, value, outbound)
        elif isinstance(value, Mapping):
            raise InvalidParameter(name, "give the value itself (a number, a string or true/false)")
        values[name] = value
    missing = [n for n, d in described.items() if d.get("minOccurs", 1) >= 1 and values.get(n) is None]
    if missing:
        raise InvalidParameter(missing[0], "is required: give it in 'inputs'")
    if values.get("stac_url") is not None:
        _check_url("stac_url", check_stac_url(values["stac_url"]), outbound)
    # The library's own checks; a URL stands for a value read later, by the job.
    checked = {k: (None if k in GEOJSON_INPUTS and _URL.match(str(v)) else v) for k, v in values.items()}
    if checked.get("aoi") is None and "aoi" in values:
        checked["aoi"] = "0,0,1,1"  # an aoi URL: read by the job, under the same outbound policy
    params_classes: tuple[type[Any], ...] = (DiscoveryParams, CorrelationParams, AggregationParams)
    for params in params_classes:
        kwargs: dict[str, Any] = {f.name: checked[f.name] for f in fields(params) if checked.get(f.name) is not None}
        try:
            params(**kwargs)  # inline GeoJSON (outlines, points) is read here: its errors are a 400 too
        except TypeError as exc:  # a required field left out: the description check above names it
            raise InvalidParameter(params.__name__, str(exc)) from exc
    return values


__all__ = ["GEOJSON_INPUTS", "check_inputs", "unwrap", "value_forms"]
