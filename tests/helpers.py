"""Helpers shared by several test modules: small scenes, velocity products and their files.

Test modules import from here (``from helpers import ...``), never from each other.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from shapely.geometry import box

from glacier_velocity.aggregation.datacube import DATACUBE_FILE_NAME, write_datacube
from glacier_velocity.aggregation.summary import aggregate_products, write_summary
from glacier_velocity.demo.synthetic import Translation, make_pair
from glacier_velocity.domain.outlines import GlacierOutlines
from glacier_velocity.domain.velocity import VelocityProduct
from glacier_velocity.io.cog import COG_MEDIA_TYPE, write_velocity_cog
from glacier_velocity.products.figures import plot_summary, plot_time_series
from glacier_velocity.products.items import footprint_lonlat, make_product_item, save_product_item
from glacier_velocity.products.naming import product_basename, product_paths

#: The ``run_notebook`` fixture (conftest.py): notebook, executed notebook, parameters ->
#: the finished papermill process.
NotebookRunner = Callable[..., subprocess.CompletedProcess[str]]

# --- Sentinel-2-like scenes: B08 COGs and Earth-Search-v1-shaped items ---------------------------

X0, Y0 = 430_000.0, 4_000_000.0
EPSG = 32643  # UTM 43N, the Karakoram
REF_TIME = datetime(2020, 6, 1, 5, 36, 29, tzinfo=UTC)
SEC_TIME = datetime(2020, 6, 17, 11, 36, 29, tzinfo=UTC)  # 16.25 days later


def write_scene_cog(path, array, transform, *, crs=f"EPSG:{EPSG}", nodata=0, blocksize=256) -> str:
    """A single-band COG of ``array`` (DN ``nodata`` = nodata) on ``transform``, UTM 43N by default;
    the one writer of the tests' input rasters. Returns its path."""
    profile = dict(
        driver="COG",
        width=array.shape[1],
        height=array.shape[0],
        count=1,
        dtype=array.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="DEFLATE",
        blocksize=blocksize,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return str(path)


def write_item(directory, item_id, when, transform, shape, assets, properties, *, epsg=EPSG) -> str:
    """A STAC item JSON ``<item_id>.json`` in ``directory`` with the footprint of the grid
    (``transform``, ``shape`` in EPSG ``epsg``), the given assets (relative hrefs) and properties
    besides ``datetime`` and ``proj:epsg``. Returns its path."""
    geometry = footprint_lonlat(transform, shape, f"EPSG:{epsg}", densify=1)
    lons = [p[0] for p in geometry["coordinates"][0]]
    lats = [p[1] for p in geometry["coordinates"][0]]
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
        ],
        "id": item_id,
        "geometry": geometry,
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {"datetime": when.isoformat().replace("+00:00", "Z"), **properties, "proj:epsg": epsg},
        "assets": assets,
        "links": [],
    }
    path = directory / f"{item_id}.json"
    path.write_text(json.dumps(item))
    return str(path)


def _data_asset(name: str, title: str, **extra) -> dict:
    """A COG asset: ``name`` beside the item (relative href), or where it is when absolute."""
    href = name if Path(name).is_absolute() else f"./{name}"
    return {"href": href, "type": COG_MEDIA_TYPE, "roles": ["data"], "title": title, **extra}


def write_scene_item(directory, item_id, when, cog_name, transform, shape, with_nir=True, scl_name=None):
    """An Earth-Search-v1-shaped Sentinel-2 item JSON with a relative ``nir`` asset href."""
    assets = {"thumbnail": {"href": "./thumb.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}}
    if with_nir:
        assets["nir"] = _data_asset(cog_name, "NIR 1 (band 8) - 10m", **{"proj:shape": list(shape)})
    if scl_name:
        assets["scl"] = _data_asset(scl_name, "Scene classification map (SCL)")
    properties = {"platform": "sentinel-2b", "eo:cloud_cover": 2.5, "grid:code": "MGRS-43SEA"}
    return write_item(directory, item_id, when, transform, shape, assets, properties)


def write_landsat_item(directory, item_id, when, pan_name, transform, shape, *, epsg, qa_name=None, pan=True):
    """A Landsat 8 Collection 2 Level-1 item JSON shaped as the USGS STAC server's
    (``landsat-c2l1``): the panchromatic band as ``pan`` (or, with ``pan=False``, a Level-2 item
    without it), ``qa_pixel`` when ``qa_name`` is given, WRS-2 path and row."""
    assets = {"thumbnail": {"href": "./thumb.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}}
    if pan:
        assets["pan"] = _data_asset(pan_name, "Panchromatic Band (B8)", gsd=15)
    else:
        assets["nir08"] = _data_asset(pan_name, "Near Infrared Band 0.8 (B5)", gsd=30)
    if qa_name:
        assets["qa_pixel"] = _data_asset(qa_name, "Pixel Quality Assessment Band")
    properties = {
        "platform": "LANDSAT_8",
        "instruments": ["OLI", "TIRS"],
        "eo:cloud_cover": 44.0,
        "landsat:wrs_path": "063",
        "landsat:wrs_row": "018",
    }
    return write_item(directory, item_id, when, transform, shape, assets, properties, epsg=epsg)


def write_pair_items(directory, shape=(128, 128), seed=7):
    """A synthetic pair moving 2.5, -1.5 px (east, south) over the 16.25 days from REF_TIME to
    SEC_TIME: its B08 COGs (``ref_B08.tif``, ``sec_B08.tif``, 10 m) and Earth-Search-shaped items
    in ``directory``. Returns the paths of the reference and the secondary item."""
    transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
    synthetic = make_pair(shape, Translation(2.5, -1.5), seed=seed)
    write_scene_cog(directory / "ref_B08.tif", synthetic.reference, transform)
    write_scene_cog(directory / "sec_B08.tif", synthetic.secondary, transform)
    return (
        write_scene_item(directory, "S2B_43SEA_20200601_0_L2A", REF_TIME, "ref_B08.tif", transform, shape),
        write_scene_item(directory, "S2A_43SEA_20200617_0_L2A", SEC_TIME, "sec_B08.tif", transform, shape),
    )


# --- a velocity product on a 120 m Karakoram grid (products, figures) ------------------------

KARAKORAM_REF_TIME = datetime(2020, 6, 1, 5, 36, 29, tzinfo=UTC)
KARAKORAM_SEC_TIME = datetime(2020, 7, 21, 5, 36, 31, tzinfo=UTC)
# 120 m velocity grid on UTM 43N (Karakoram, about 74.2 E, 36.1 N).
KARAKORAM_TRANSFORM = Affine(120.0, 0.0, 430_000.0, 0.0, -120.0, 4_000_000.0)


def karakoram_product(shape=(30, 40), speed=100.0) -> VelocityProduct:
    """A 120 m velocity product (speed ``speed`` m/yr plus an eastward ramp, a nodata corner) in UTM 43N."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    vx = np.full(shape, speed * 0.6, np.float32) + cols.astype(np.float32)
    vy = np.full(shape, -speed * 0.8, np.float32)
    vx[:4, :5] = np.nan
    vy[:4, :5] = np.nan
    v = np.hypot(vx, vy).astype(np.float32)
    dt = (KARAKORAM_SEC_TIME - KARAKORAM_REF_TIME).total_seconds() / 86400
    return VelocityProduct(
        vx=vx,
        vy=vy,
        v=v,
        dx=(vx * dt / 365.25 / 10).astype(np.float32),
        dy=(-vy * dt / 365.25 / 10).astype(np.float32),
        peak=np.full(shape, 0.8, np.float32),
        snr=np.full(shape, 5.0, np.float32),
        transform=KARAKORAM_TRANSFORM,
        crs="EPSG:32643",
        dt_days=dt,
        reference_id="S2B_43SEA_20200601_0_L2A",
        secondary_id="S2A_43SEA_20200721_0_L2A",
        reference_datetime=KARAKORAM_REF_TIME,
        secondary_datetime=KARAKORAM_SEC_TIME,
        engine="ncc",
        engine_params={"grid_spacing_px": 12, "chip_px": 32},
        sources={"reference": "https://example.org/items/a", "secondary": "https://example.org/items/b"},
    )


# --- velocity products on a small grid ---------------------------------------------------------

#: 4 x 5 grid, 100 m pixels, UTM 33N.
PRODUCT_TRANSFORM = Affine(100.0, 0.0, 500_000.0, 0.0, -100.0, 7_000_000.0)
PRODUCT_CRS = "EPSG:32633"
PRODUCT_SHAPE = (4, 5)
T0 = datetime(2021, 6, 3, 10, 30, tzinfo=UTC)


def make_product(
    v: np.ndarray,
    *,
    transform: Affine = PRODUCT_TRANSFORM,
    crs: str = PRODUCT_CRS,
    reference_datetime: datetime = T0,
    dt_days: float = 10.0,
    name: str = "a",
    direction_deg: float = 0.0,
    error_m_per_yr: float | None = 10.0,
) -> VelocityProduct:
    """A velocity product of speed ``v`` (m/yr) flowing towards ``direction_deg`` (0 = east, 90 = north).

    As the correction stage makes it: corrected on stable ground (outlines) with a uniform 1-sigma
    error ``error_m_per_yr`` (m/yr). None: raw, never through the correction, no errors (the
    summary leaves such a pair out unless ``keep_uncorrected_pairs``).
    """
    v = np.asarray(v, dtype=np.float32)
    angle = math.radians(direction_deg)
    vx = (v * np.float32(math.cos(angle))).astype(np.float32)
    vy = (v * np.float32(math.sin(angle))).astype(np.float32)
    secondary = reference_datetime + timedelta(days=dt_days)
    ones = np.ones_like(v)
    product = VelocityProduct(
        vx=vx,
        vy=vy,
        v=v,
        dx=vx / 1000,
        dy=-vy / 1000,
        peak=ones * 0.8,
        snr=ones * 5.0,
        transform=transform,
        crs=crs,
        dt_days=dt_days,
        reference_id=f"S2A_33WXS_{reference_datetime:%Y%m%d}_0_L2A_{name}",
        secondary_id=f"S2B_33WXS_{secondary:%Y%m%d}_0_L2A_{name}",
        reference_datetime=reference_datetime,
        secondary_datetime=secondary,
        engine="ncc",
    )
    if error_m_per_yr is None:
        return product
    return replace(with_errors(product, error_m_per_yr), correction=dict(CORRECTED))


#: The correction record of a product corrected on stable ground outside glacier outlines.
CORRECTED: dict[str, object] = {
    "stable_shift_method": "outlines",
    "stable_shift_applied": True,
    "stable_shift_dx_px": 0.1,
    "stable_shift_dy_px": -0.2,
    "stable_count": 500,
    "stable_shift_warning": "",
}


#: Three pairs: reference time, baseline (days), speed (m/yr).
PAIRS = [(T0, 10.0, 100.0), (T0 + timedelta(days=40), 12.5, 120.0), (T0 + timedelta(days=370), 20.0, 80.0)]


def write_pair_products(tmp_path):
    """Three products written as correlate would: COG, quicklook-free item JSON, in their own folder."""
    item_paths = []
    for k, (start, dt_days, speed) in enumerate(PAIRS):
        v = np.full(PRODUCT_SHAPE, speed, dtype=np.float32)
        v[k, k] = np.nan
        product = make_product(v, reference_datetime=start, dt_days=dt_days, name=f"p{k}")
        basename = product_basename(("33WXS", product.reference_datetime, product.secondary_datetime))
        cog, _, item_json = product_paths(tmp_path / "pairs", basename)
        cog.parent.mkdir(parents=True, exist_ok=True)
        write_velocity_cog(product, cog)
        item_paths.append(save_product_item(make_product_item(product, cog), item_json))
    return item_paths


def summary_files(tmp_path, item_paths):
    """Summary COGs, small figures and the datacube of the products ``item_paths``, under ``tmp_path/summary``."""
    cogs = [pystac.Item.from_file(str(p)).assets["velocity"].get_absolute_href() for p in item_paths]
    summary = aggregate_products(cogs)
    files = write_summary(summary, tmp_path / "summary")
    return files.with_figures(
        plot_summary(summary, tmp_path / "summary" / "summary.png", dpi=40),
        plot_time_series(summary, tmp_path / "summary" / "time_series.png", dpi=40),
    ).with_datacube(write_datacube(cogs, tmp_path / "summary" / DATACUBE_FILE_NAME).path)


# --- a full disk: a small tmpfs in a user namespace ------------------------------------------


def unshare_works() -> bool:
    """Whether unprivileged user namespaces can mount a tmpfs here (``unshare -r -m``)."""
    try:
        probe = subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


#: Python source of ``fill_disk(disk, spare)``, for the scripts run on the tmpfs: fills the file
#: system to the last byte (every later write fails with ENOSPC), then frees ``spare`` bytes
#: again; returns the errno of the write that failed.
FILL_DISK_SOURCE = """
def fill_disk(disk, spare):
    import os
    with open(disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"x" * 4096)
        except OSError as exc:
            full = exc.errno
    os.truncate(disk / "filler", (disk / "filler").stat().st_size - spare)
    return full
"""


def run_on_small_disk(disk: Path, size: str, script: Path, *args: str, timeout: float = 900) -> dict:
    """Run ``script`` with ``disk`` a fresh tmpfs of ``size`` (e.g. ``"4m"``), mounted in a new
    user and mount namespace; the JSON object its last line of output prints."""
    mount = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    done = subprocess.run(
        ["unshare", "-r", "-m", "sh", "-c", mount, "sh", size, str(disk), sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- CF conventions ---------------------------------------------------------------------------


def cf_compliance_failures(path) -> list[str]:
    """The IOOS compliance checker's ``cf:1.8`` suite on a NetCDF file, at its strictest
    criteria: the messages of every check that failed (empty: the file passes). Skips the
    test when the checker (test extra) is not installed."""
    import tempfile
    import warnings

    import pytest

    runner = pytest.importorskip(
        "compliance_checker.runner", reason="the IOOS compliance checker (test extra) is missing"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its deprecated ioos_sos checker, loaded with the rest
        runner.CheckSuite.load_all_available_checkers()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        runner.ComplianceChecker.run_checker(
            str(path), ["cf:1.8"], 0, "strict", output_filename=str(report), output_format="json"
        )
        results = json.loads(report.read_text())["cf:1.8"]
    return [
        f"{check['name']}: {message}"
        for check in results["all_priorities"]
        if check["value"][0] < check["value"][1]
        for message in check["msgs"]
    ]


# --- STAC validation without network ----------------------------------------------------------


class CoreSchemaValidator(JsonSchemaSTACValidator):
    """Validates against the STAC core schemas shipped with pystac; no network.

    Extension schemas (projection, raster) are only published online, which tests must not
    reach; the extension fields are checked by hand in the tests instead.
    """

    def validate_extension(self, *args, **kwargs):
        return None


# --- Products with errors, over ice and rock ---------------------------------------------------


def with_errors(product, vx_error: float, vy_error: float | None = None):
    """The product with uniform 1-sigma errors (m/yr) where it has a speed; v_error as the correction propagates it."""
    vy_error = vx_error if vy_error is None else vy_error
    valid = np.isfinite(product.v)
    ex = np.where(valid, vx_error, np.nan).astype(np.float32)
    ey = np.where(valid, vy_error, np.nan).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        ev = np.sqrt((product.vx * ex) ** 2 + (product.vy * ey) ** 2) / product.v
    ev = np.where(product.v > 0, ev, np.sqrt((ex**2 + ey**2) / 2)).astype(np.float32)
    return replace(product, vx_error=ex, vy_error=ey, v_error=ev)


def ice_and_rock(ice_speed: float = 200.0) -> np.ndarray:
    """Speed map: the three left columns ice at ``ice_speed``, the two right ones rock at 5 m/yr."""
    v = np.full(PRODUCT_SHAPE, 5.0, dtype=np.float32)
    v[:, :3] = ice_speed
    return v


#: The ice of :func:`ice_and_rock` as a polygon in the grid CRS: columns 0-2 (x 500 000 - 500 300 m).
ICE = GlacierOutlines(box(500_000.0, 6_999_600.0, 500_300.0, 7_000_000.0), PRODUCT_CRS)


def pair_series(speeds, errors, **kwargs):
    """Products of ``speeds`` maps, 40 days apart, each with its uniform 1-sigma error (m/yr)."""
    return [
        with_errors(make_product(v, reference_datetime=T0 + timedelta(days=40 * i), name=f"p{i}", **kwargs), e)
        for i, (v, e) in enumerate(zip(speeds, errors, strict=True))
    ]


# --- servers on 127.0.0.1 (moto S3, the OGC API) --------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(
    command: Sequence[str],
    ready: Callable[[], bool],
    log_path: Path,
    *,
    startup_s: float = 60.0,
    cwd=None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` as a server until the block ends; wait (at most ``startup_s``, s) for ``ready()``.

    ``ready`` is polled every 0.5 s and may raise OSError while the server is starting. The
    server's output goes to ``log_path``; its tail is in the error when it does not start.
    Yields the server's process; ``env`` is its environment (default this one's).
    """
    with log_path.open("w") as log:
        process = subprocess.Popen(list(command), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + startup_s
            while True:
                try:
                    if ready():
                        break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


# --- the application package -------------------------------------------------------------------


def write_development_package(path: Path) -> Path:
    """Write the development application package (repository notebooks, image as a hint) to ``path``.

    The package an ADES wrapper or the local OGC API runs in the tests without containers.
    """
    from glacier_velocity.deploy import package as pkg

    root = Path(__file__).resolve().parents[1]
    metadata = pkg.project_metadata(root)
    document = pkg.build_package(
        root / "cwl",
        image=f"localhost/glacier-velocity:{metadata.version}",
        metadata=metadata,
        notebooks_dir=str(root / "notebooks"),
        container="hint",
    )
    return pkg.write_package(document, path)


# --- a Slurm cluster (make slurm-up) ----------------------------------------------------------


def slurm_cluster_problem() -> str | None:
    """Why no Slurm cluster can take jobs here, or None when one can."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm client (sinfo/sbatch) on PATH: start a single-node cluster with `make slurm-up` (root)"
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s: is slurmctld running? (`make slurm-status`)"
    if answer.returncode != 0:
        return f"sinfo failed ({answer.stderr.strip() or answer.returncode}): start the cluster with `make slurm-up` (root)"
    states = answer.stdout.split()
    if not any(s.rstrip("*~#!%$@^-").lower() in {"idle", "mixed", "allocated", "completing"} for s in states):
        return f"no Slurm node can take jobs (node states: {states or 'none'}); `make slurm-status` shows why"
    return None


def require_tool(path: Path, setup: str) -> Path:
    """``path``, a command-line tool ``make <setup>`` installs; without it the test is skipped, saying so."""
    if not path.exists():
        pytest.skip(f"{path} missing: run `make {setup}` (make test does)")
    return path


# --- the ADES tools: eoap-cwlwrap (deploy/ades/wrap.py) and an S3 API (moto) on 127.0.0.1 --------

TOOLS = Path(__file__).resolve().parents[1] / ".venv" / "tools"
CWLWRAP_PYTHON = TOOLS / "cwlwrap" / "bin" / "python"
MOTO_SERVER = TOOLS / "moto" / "bin" / "moto_server"


def wrap_package(package_file: Path, work: Path) -> Path:
    """``package_file`` wrapped as make package-wrap does (deploy/ades/wrap.py), into ``work``."""
    require_tool(CWLWRAP_PYTHON, "ades-setup")
    ades = Path(__file__).resolve().parents[1] / "deploy" / "ades"
    completed = subprocess.run(
        [
            str(CWLWRAP_PYTHON),
            str(ades / "wrap.py"),
            "--workflow",
            f"{package_file}#glacier-velocity",
            "--directory-stage-in",
            str(ades / "stage-in.cwl"),
            "--file-stage-in",
            str(ades / "file-stage-in.cwl"),
            "--directory-stage-out",
            str(ades / "stage-out.cwl"),
            "--output",
            str(work / "wrapped.cwl"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return work / "wrapped.cwl"


@contextmanager
def moto_s3_server(log_dir: Path) -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1 (its URL), stopped afterwards."""
    import urllib.request

    require_tool(MOTO_SERVER, "ades-setup")
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
        return True

    with running_server([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], ready, log_dir / "moto.log"):
        yield url
