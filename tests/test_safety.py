"""Safety: no shell, only http(s)/s3/local asset locations, credentials from the environment only,
a non-root container, and property-based checks of parameter validation."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flaky_http import FlakyServer
from glacier_velocity.cli import main
from glacier_velocity.domain.hrefs import check_asset_href
from glacier_velocity.errors import CatalogError, InputError, InvalidParameter
from glacier_velocity.io.raster import gdal_path, read_window
from glacier_velocity.io.retry import RetryPolicy, http_adapter, redact
from glacier_velocity.stac.discovery import DiscoveryParams, open_catalog
from glacier_velocity.stac.scene import Scene
from glacier_velocity.tracking import TrackingParams
from glacier_velocity.workflow.correlate import CorrelationParams

ROOT = Path(__file__).resolve().parents[1]
AOI = ["74.40", "35.40", "74.60", "35.60"]
SECRET = "gv-test-secret-7f3a9c"

# --- No shell ----------------------------------------------------------------------------------

#: Where commands could be built: the package, CWL, notebooks, CI and the Makefile's scripts,
#: container and deployment files.
SCANNED = ["src", "cwl", "notebooks", ".ci", "docker", "deploy", "mk", "Makefile", "scripts"]
SHELL_PATTERNS = re.compile(
    r"shell\s*=\s*True|os\.system\s*\(|os\.popen\s*\(|subprocess\.getoutput|subprocess\.getstatusoutput|"
    r"ShellCommandRequirement|pty\.spawn|asyncio\.create_subprocess_shell"
)


def _scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return files


def test_no_shell_interpolation_anywhere():
    files = _scanned_files()
    assert any(p.suffix == ".cwl" for p in files) and any(p.suffix == ".ipynb" for p in files)
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if SHELL_PATTERNS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "shell interpolation found:\n" + "\n".join(found)


def test_the_shell_scan_would_catch_each_pattern():
    for line in (
        "subprocess.run(cmd, shell=True)",
        'os.system("rm")',
        "os.popen('ls')",
        "class: ShellCommandRequirement",
    ):
        assert SHELL_PATTERNS.search(line)


# --- Asset locations ---------------------------------------------------------------------------

BAD_HREFS = [
    "ftp://example.org/B08.tif",
    "data:image/tiff;base64,SUkqAA==",
    "javascript:alert(1)",
    "gopher://example.org/B08.tif",
    "smb://server/share/B08.tif",
    "/vsistdin/",
    "/vsicurl/ftp://example.org/B08.tif",
    "/vsizip//tmp/x.zip/B08.tif",
    "s3:///no-bucket.tif",
    "",
]


@pytest.mark.parametrize("href", BAD_HREFS)
def test_only_http_s3_and_local_asset_locations_are_accepted(href):
    with pytest.raises(InputError, match="asset"):
        check_asset_href(href, "scene 'S2A' asset 'nir'")
    with pytest.raises(InputError):
        gdal_path(href)
    with pytest.raises(InputError):
        read_window(href)
    with pytest.raises(InputError, match="scene 'S2A' asset 'nir'"):
        Scene(
            id="S2A",
            datetime=datetime(2020, 6, 1, tzinfo=UTC),
            self_href=None,
            band_href=href,
            classification_href=None,
            cloud_cover=1.0,
            tile="43SEA",
            epsg=32643,
            geometry={},
        )


@pytest.mark.parametrize(
    "href, path",
    [
        ("https://example.org/a/B08.tif", "/vsicurl/https://example.org/a/B08.tif"),
        ("http://127.0.0.1:8000/B08.tif", "/vsicurl/http://127.0.0.1:8000/B08.tif"),
        ("s3://sentinel-cogs/a/B08.tif", "/vsis3/sentinel-cogs/a/B08.tif"),
        ("/vsimem/b08.tif", "/vsimem/b08.tif"),
    ],
)
def test_accepted_asset_locations(href, path):
    assert check_asset_href(href) == href
    assert gdal_path(href) == path


def test_scl_asset_is_checked_too():
    with pytest.raises(InputError, match="asset 'scl': unsupported URL scheme 'ftp'"):
        Scene(
            id="S2A",
            datetime=datetime(2020, 6, 1, tzinfo=UTC),
            self_href=None,
            band_href="/data/B08.tif",
            classification_href="ftp://x/SCL.tif",
            cloud_cover=1.0,
            tile="43SEA",
            epsg=32643,
            geometry={},
        )


# --- Credentials -------------------------------------------------------------------------------


def test_token_reaches_the_api_and_nothing_else(stac_api, tmp_path, monkeypatch, caplog, capsys):
    """The API requires the token; it is sent, and appears in no output, log or notebook."""
    monkeypatch.setenv("GLACIER_VELOCITY_STAC_TOKEN", SECRET)
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "pairs.json"
    with FlakyServer(upstream=stac_api, token=SECRET) as server:
        code = main(
            [
                "-v",
                "discover",
                "--stac-url",
                server.url,
                "--aoi",
                ",".join(AOI),
                "--start-year",
                "2020",
                "--end-year",
                "2020",
                "--start-month",
                "6",
                "--end-month",
                "9",
                "--out",
                str(out),
            ]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert len(server.requests) >= 3
        assert all(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in server.requests)

        notebook = tmp_path / "discovery.ipynb"
        papermill = pytest.importorskip("papermill")
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "01-discovery.ipynb"),
            str(notebook),
            kernel_name="python3",
            progress_bar=False,
            parameters={
                "stac_url": server.url,
                "aoi": ",".join(AOI),
                "start_year": 2020,
                "end_year": 2020,
                "start_month": 6,
                "end_month": 9,
                "pairs_json": str(tmp_path / "nb-pairs.json"),
            },
            cwd=str(tmp_path),
        )
    assert json.loads(out.read_text())["count"] >= 1
    assert "Headers:" in caplog.text  # pystac-client's request log, which shows headers, was captured...
    places = {"stdout": captured.out, "stderr": captured.err, "log": caplog.text}
    places.update(
        {str(p.relative_to(tmp_path)): p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()}
    )
    assert set(places) >= {"pairs.json", "discovery.ipynb", "nb-pairs.json"}
    leaks = [name for name, text in places.items() if SECRET in text]
    assert leaks == []  # ...and holds no token


def test_missing_or_wrong_token_is_a_clear_error_without_the_token(stac_api, monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_HTTP_BACKOFF_S", "0.01")
    with FlakyServer(upstream=stac_api, token=SECRET) as server:
        monkeypatch.delenv("GLACIER_VELOCITY_STAC_TOKEN", raising=False)
        with pytest.raises(CatalogError, match=r"HTTP 401.*set GLACIER_VELOCITY_STAC_TOKEN"):
            open_catalog(server.url)
        monkeypatch.setenv("GLACIER_VELOCITY_STAC_TOKEN", "wrong-" + SECRET)
        with pytest.raises(CatalogError) as caught:
            open_catalog(server.url)
        # The server echoes the header it got; the message must not.
        assert "HTTP 401" in str(caught.value) and SECRET not in str(caught.value)
        assert len(server.requests) == 2  # 401 is not retried


def test_token_is_sent_to_the_api_origin_only(monkeypatch):
    with FlakyServer(files={"/x": b"{}"}) as api, FlakyServer(files={"/x": b"{}"}) as other:
        session = requests.Session()
        session.mount("http://", http_adapter(RetryPolicy(attempts=1), SECRET, api.url + "/stac"))
        session.get(api.url + "/x", timeout=5)
        session.get(other.url + "/x", timeout=5)
    assert api.requests[0].headers.get("Authorization") == f"Bearer {SECRET}"
    assert "Authorization" not in other.requests[0].headers


def test_redact_removes_the_token(monkeypatch):
    monkeypatch.setenv("GLACIER_VELOCITY_STAC_TOKEN", SECRET)
    assert redact(f"401: bad Authorization: Bearer {SECRET} for {SECRET}") == "401: bad Authorization: *** for ***"
    monkeypatch.delenv("GLACIER_VELOCITY_STAC_TOKEN")
    assert redact("nothing to hide") == "nothing to hide"


# --- Container ---------------------------------------------------------------------------------


def test_dockerfile_ends_as_a_non_root_user():
    dockerfile = ROOT / "docker" / "Dockerfile"
    if not dockerfile.is_file():
        pytest.skip("no docker/Dockerfile")
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
    assert users, "the image must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0")


@pytest.mark.containers
def test_container_runs_as_non_root():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    inspected = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Config.User}}", "glacier-velocity:latest"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if inspected.returncode != 0:
        pytest.skip(f"image glacier-velocity:latest not available ({inspected.stderr.strip()[:80]})")
    assert inspected.stdout.strip().split(":")[0] not in ("", "root", "0")
    uid = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "id", "glacier-velocity:latest", "-u"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert uid.returncode == 0 and uid.stdout.strip() != "0"


# --- Property-based parameter validation -------------------------------------------------------

lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)


@st.composite
def bboxes(draw):
    west, east = sorted(draw(st.lists(lons, min_size=2, max_size=2, unique=True)))
    south, north = sorted(draw(st.lists(lats, min_size=2, max_size=2, unique=True)))
    return (west, south, east, north)


@st.composite
def baseline_bounds(draw):
    lo = draw(st.none() | st.floats(min_value=0.01, max_value=1000))
    hi = draw(st.none() | st.floats(min_value=lo or 0.01, max_value=2000))
    return lo, hi


@st.composite
def discovery_kwargs(draw):
    start_year = draw(st.integers(1900, 2200))
    lo, hi = draw(baseline_bounds())
    return {
        "stac_url": draw(
            st.sampled_from(
                ["https://earth-search.aws.element84.com/v1", "http://127.0.0.1:8080", "http://localhost/api"]
            )
        ),
        "collection": draw(st.sampled_from(["sentinel-2-l2a", "s2"])),
        "aoi": draw(bboxes()),
        "start_year": start_year,
        "end_year": draw(st.integers(start_year, 2200)),
        "start_month": draw(st.integers(1, 12)),
        "end_month": draw(st.integers(1, 12)),
        "max_cloud_cover": draw(st.floats(0, 100)),
        "pairs_per_image": draw(st.integers(1, 50)),
        "min_baseline_days": lo,
        "max_baseline_days": hi,
        "tile": draw(st.none() | st.sampled_from(["43SEA", "T43SEA", "MGRS-07VCG", "32tlr"])),
        "max_items": draw(st.integers(1, 100_000)),
        "max_pairs": draw(st.integers(1, 100_000)),
    }


bad_floats = st.sampled_from([math.nan, math.inf, -math.inf])

#: For each parameter: values out of range, and the parameter name the error must carry.
BAD_DISCOVERY = {
    "aoi": (
        st.one_of(
            bboxes().map(lambda b: (b[2], b[1], b[0], b[3])).filter(lambda b: b[0] != b[2]),
            bboxes().map(lambda b: (b[0], b[3], b[2], b[1])).filter(lambda b: b[1] != b[3]),
            st.tuples(st.floats(180.001, 1e6), lats, lons, lats),
            st.tuples(lons, st.floats(-1e6, -90.001), lons, lats),
            st.lists(lons, min_size=0, max_size=3).map(tuple),
            st.tuples(bad_floats, lats, lons, lats),
        ),
        "aoi",
    ),
    "start_year": (st.integers(max_value=1899) | st.integers(min_value=2201), "start_year"),
    "end_year": (st.integers(max_value=1899) | st.integers(min_value=2201), "end_year"),
    "start_month": (st.integers(max_value=0) | st.integers(min_value=13), "start_month"),
    "end_month": (st.integers(max_value=0) | st.integers(min_value=13), "end_month"),
    "max_cloud_cover": (st.floats(max_value=-1e-9) | st.floats(min_value=100.000001) | bad_floats, "max_cloud_cover"),
    "pairs_per_image": (st.integers(max_value=0), "pairs_per_image"),
    "min_baseline_days": (st.floats(max_value=0) | bad_floats, "min_baseline_days"),
    "max_baseline_days": (st.floats(max_value=0) | bad_floats, "max_baseline_days"),
    "max_items": (st.integers(max_value=0), "max_items"),
    "max_pairs": (st.integers(max_value=0) | st.sampled_from([True, 2.5, "2000"]), "max_pairs"),
    "tile": (st.sampled_from(["", "XYZ", "4SEA", "43SE", "433SEA", "43S-EA", "43AEA"]), "tile"),
    "stac_url": (
        st.sampled_from(["", "earth-search.aws.element84.com/v1", "ftp://x/stac", "file:///tmp/stac", "javascript:x"]),
        "stac_url",
    ),
    "collection": (st.sampled_from(["", "   "]), "collection"),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kwargs=discovery_kwargs())
def test_any_valid_discovery_parameters_construct(kwargs):
    params = DiscoveryParams(**kwargs)
    assert params.aoi.bbox == kwargs["aoi"]
    assert len(params.months) == ((kwargs["end_month"] - kwargs["start_month"]) % 12) + 1
    assert list(params.years) == list(range(kwargs["start_year"], kwargs["end_year"] + 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kwargs=discovery_kwargs(), data=st.data())
def test_any_out_of_range_discovery_value_names_its_parameter(kwargs, data):
    name = data.draw(st.sampled_from(sorted(BAD_DISCOVERY)))
    strategy, parameter = BAD_DISCOVERY[name]
    kwargs[name] = data.draw(strategy)
    if name == "min_baseline_days":
        kwargs["max_baseline_days"] = None
    with pytest.raises(InvalidParameter) as caught:
        DiscoveryParams(**kwargs)
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}: ")


@settings(max_examples=100, deadline=None)
@given(kwargs=discovery_kwargs(), gap=st.integers(1, 300))
def test_start_year_after_end_year_names_start_year(kwargs, gap):
    kwargs["end_year"] = kwargs["start_year"]
    kwargs["start_year"] = kwargs["end_year"] + gap
    assume(kwargs["start_year"] <= 2200)
    with pytest.raises(InvalidParameter, match="swap them") as caught:
        DiscoveryParams(**kwargs)
    assert caught.value.parameter == "start_year"


@settings(max_examples=100, deadline=None)
@given(lo=st.floats(0.02, 1000), fraction=st.floats(0.01, 0.99))
def test_min_baseline_above_max_names_min(lo, fraction):
    with pytest.raises(InvalidParameter) as caught:
        DiscoveryParams(
            aoi=(74.4, 35.4, 74.6, 35.6),
            start_year=2020,
            end_year=2020,
            min_baseline_days=lo,
            max_baseline_days=lo * fraction,
        )
    assert caught.value.parameter == "min_baseline_days"


@st.composite
def tracking_kwargs(draw):
    return {
        "grid_spacing_px": draw(st.integers(1, 500)),
        "chip_px": draw(st.integers(4, 128).map(lambda n: 2 * n)),
        "search_px": draw(st.floats(1e-3, 1e4)),
        "filter": draw(st.sampled_from(["wallis", "hps", "oc", "none"])),
        "filter_width_px": draw(st.integers(1, 50).map(lambda n: 2 * n + 1)),
        "min_peak": draw(st.floats(-1, 1, exclude_max=True)),
        "min_snr": draw(st.floats(0, 100)),
        "median_threshold": draw(st.floats(1e-6, 100)),
        "max_nodata_fraction": draw(st.floats(0, 1, exclude_max=True)),
    }


BAD_TRACKING = {
    "grid_spacing_px": (st.integers(max_value=0), "grid_spacing_px"),
    "chip_px": (
        st.integers(max_value=7) | st.integers(min_value=257) | st.integers(4, 127).map(lambda n: 2 * n + 1),
        "chip_px",
    ),
    "search_px": (st.floats(max_value=0) | bad_floats, "search_px"),
    "filter": (st.sampled_from(["sharpen", "", "Wallis"]), "filter"),
    "filter_width_px": (st.integers(max_value=2) | st.integers(2, 50).map(lambda n: 2 * n), "filter_width_px"),
    "min_peak": (st.floats(max_value=-1.000001) | st.floats(min_value=1) | st.just(math.nan), "min_peak"),
    "min_snr": (st.floats(max_value=-1e-9) | st.just(math.nan), "min_snr"),
    "median_threshold": (st.floats(max_value=0) | st.just(math.nan), "median_threshold"),
    "max_nodata_fraction": (
        st.floats(max_value=-1e-9) | st.floats(min_value=1) | st.just(math.nan),
        "max_nodata_fraction",
    ),
}


@settings(max_examples=150, deadline=None)
@given(kwargs=tracking_kwargs())
def test_any_valid_tracking_parameters_construct(kwargs):
    params = TrackingParams(**kwargs)
    assert params.chip_px == kwargs["chip_px"] and params.search_px == kwargs["search_px"]


@settings(max_examples=300, deadline=None)
@given(kwargs=tracking_kwargs(), data=st.data())
def test_any_out_of_range_tracking_value_names_its_parameter(kwargs, data):
    name = data.draw(st.sampled_from(sorted(BAD_TRACKING)))
    strategy, parameter = BAD_TRACKING[name]
    kwargs[name] = data.draw(strategy)
    with pytest.raises(InvalidParameter) as caught:
        TrackingParams(**kwargs)
    assert caught.value.parameter == parameter


@st.composite
def correlation_kwargs(draw):
    return {
        "max_velocity_m_per_yr": draw(st.floats(1e-3, 1e5)),
        "grid_spacing_px": draw(st.integers(1, 500)),
        "chip_px": draw(st.integers(4, 128).map(lambda n: 2 * n)),
        "filter": draw(st.sampled_from(["wallis", "hps", "oc", "none"])),
        "engine": draw(st.sampled_from(["ncc", "autorift"])),
        "aoi": draw(st.none() | bboxes()),
        "mask_clouds": draw(st.booleans()),
    }


BAD_CORRELATION = {
    "max_velocity_m_per_yr": (st.floats(max_value=0) | bad_floats, "max_velocity_m_per_yr"),
    "grid_spacing_px": (st.integers(max_value=0), "grid_spacing_px"),
    "chip_px": (st.integers(max_value=7) | st.integers(min_value=257), "chip_px"),
    "filter": (st.sampled_from(["sharpen", ""]), "filter"),
    "engine": (st.sampled_from(["magic", "", "NCC"]), "engine"),
    "aoi": (bboxes().map(lambda b: (b[2], b[1], b[0], b[3])).filter(lambda b: b[0] != b[2]), "aoi"),
}


@settings(max_examples=150, deadline=None)
@given(kwargs=correlation_kwargs())
def test_any_valid_correlation_parameters_construct(kwargs):
    params = CorrelationParams(**kwargs)
    assert params.tracking_params(5.0).chip_px == kwargs["chip_px"]


@settings(max_examples=300, deadline=None)
@given(kwargs=correlation_kwargs(), data=st.data())
def test_any_out_of_range_correlation_value_names_its_parameter(kwargs, data):
    name = data.draw(st.sampled_from(sorted(BAD_CORRELATION)))
    strategy, parameter = BAD_CORRELATION[name]
    kwargs[name] = data.draw(strategy)
    with pytest.raises(InvalidParameter) as caught:
        CorrelationParams(**kwargs)
    assert caught.value.parameter == parameter


@settings(max_examples=200, deadline=None)
@given(
    policy=st.builds(
        RetryPolicy,
        attempts=st.integers(1, 20),
        backoff_s=st.floats(0, 60),
        max_backoff_s=st.floats(0, 60),
        deadline_s=st.floats(0, 3600),
    )
)
def test_retry_waits_are_bounded(policy):
    waits = [policy.delay(n) for n in range(1, policy.attempts)]
    assert all(0 <= w <= policy.max_backoff_s for w in waits)
    assert sum(waits) <= policy.max_backoff_s * (policy.attempts - 1) * (1 + 1e-12)


@pytest.mark.parametrize(
    "href",
    [
        "ftp://example.org/item.json",
        "data:application/json,{}",
        "javascript:alert(1)",
        "gopher://example.org/item.json",
    ],
)
def test_item_locations_are_http_or_local_only(href):
    from glacier_velocity.stac.scene import read_item

    with pytest.raises(InputError, match="secondary: unsupported URL scheme"):
        read_item(href, "secondary")
