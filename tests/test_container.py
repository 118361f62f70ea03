"""The container image and the workflow in containers.

The slow part builds the image once (``make image``) and runs the application package with
cwltool in docker mode (podman behind ``DOCKER_HOST`` on these machines) on the 2022 demo
season (two pairs), then the same Workflow without containers, and asserts the same numbers.
Without a container engine that answers (and without ../shared/containers/setup-podman.sh to
provide one) those tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from glacier_velocity.demo import run as demo_run
from glacier_velocity.deploy import containers as deploy
from glacier_velocity.deploy import package as pkg
from glacier_velocity.errors import ContainerEngineUnavailable, InputError

ROOT = Path(__file__).resolve().parents[1]
SETUP_PODMAN = ROOT.parent / "shared" / "containers" / "setup-podman.sh"
#: The 2022 demo season: scenes of 10 June, 5 July and 8 September; two pairs within 70 days.
SEASON_2022 = {"end_year": 2022}


# --- without containers: the file server that feeds them -------------------------------------


def test_file_server_answers_byte_ranges(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "scene.tif").write_bytes(payload)
    with deploy.serve_files(tmp_path) as url:
        request = urllib.request.Request(f"{url}/sub/scene.tif", headers={"Range": "bytes=100-299"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes 100-299/{len(payload)}"
            assert response.read() == payload[100:300]
        request = urllib.request.Request(f"{url}/sub/scene.tif", headers={"Range": "bytes=-16"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == payload[-16:]
        with urllib.request.urlopen(f"{url}/sub/scene.tif", timeout=10) as response:
            assert response.status == 200 and response.read() == payload
        request = urllib.request.Request(f"{url}/sub/scene.tif", headers={"Range": f"bytes={len(payload)}-"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 416


def test_gdal_reads_a_cog_through_the_file_server(tmp_path: Path) -> None:
    """What the containerized tools do: /vsicurl/ range reads of a demo scene."""
    import numpy as np
    import rasterio

    from glacier_velocity.demo.scenes import DEMO_SCENES, _write_scene_cog, demo_transform, scene_image

    image = scene_image(DEMO_SCENES[0], 0)
    _write_scene_cog(tmp_path / "scene.tif", image, demo_transform(), "nir")
    with deploy.serve_files(tmp_path) as url, rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        with rasterio.open(f"/vsicurl/{url}/scene.tif") as src:
            window = src.read(1, window=((100, 164), (200, 264)))
    np.testing.assert_array_equal(window, image[100:164, 200:264])


def test_items_get_http_asset_hrefs(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    items = {
        "type": "FeatureCollection",
        "features": [{"id": "a", "assets": {"nir": {"href": str(tmp_path / "scenes" / "a.tif")}}}],
    }
    (tmp_path / "items.json").write_text(json.dumps(items))
    out = demo_run.items_with_http_assets(
        tmp_path / "items.json", tmp_path, "http://127.0.0.1:9", tmp_path / "http.json"
    )
    assert json.loads(out.read_text())["features"][0]["assets"]["nir"]["href"] == "http://127.0.0.1:9/scenes/a.tif"
    outside = {"type": "FeatureCollection", "features": [{"id": "b", "assets": {"nir": {"href": "/elsewhere/b.tif"}}}]}
    (tmp_path / "items.json").write_text(json.dumps(outside))
    with pytest.raises(InputError, match="outside"):
        demo_run.items_with_http_assets(tmp_path / "items.json", tmp_path, "http://127.0.0.1:9", tmp_path / "http.json")


def test_dockerfile_conventions() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    assert "-c requirements.lock" in text
    assert re.search(r"^USER glacier$", text, re.M)
    for label in ("source", "version", "licenses", "title", "description"):
        assert f"org.opencontainers.image.{label}=" in text
    # no test tools or cwltool in the image
    install = re.search(r"pip install -c requirements.lock -r runtime.txt ([^\\\n]*)", text).group(1)
    assert install.split() == ["papermill", "scrapbook", "ipykernel", "nbformat", "six"]


# --- with containers ----------------------------------------------------------------------------


PODMAN_SOCKET = Path("/run/podman/podman.sock")


def _docker_answers() -> bool:
    try:
        return deploy.container_engine() == "docker"
    except ContainerEngineUnavailable:
        return False


@pytest.fixture(scope="module")
def engine() -> str:
    """The docker CLI answering (cwltool drives it), through podman's API socket when there is
    no Docker daemon; ../shared's script sets podman up when needed."""
    if _docker_answers():
        return "docker"
    if "DOCKER_HOST" not in os.environ and PODMAN_SOCKET.exists():
        os.environ["DOCKER_HOST"] = f"unix://{PODMAN_SOCKET}"
        if _docker_answers():
            return "docker"
    if not SETUP_PODMAN.exists():
        pytest.skip(f"no Docker daemon answers and {SETUP_PODMAN} is absent to set up podman")
    # From "/": the script may leave podman's API service running, and conmon inherits its
    # working directory; a deleted directory (a removed clone) makes every later container
    # fail to start ("unable to upgrade to tcp, received 409").
    setup = subprocess.run(["bash", str(SETUP_PODMAN)], cwd="/", capture_output=True, text=True, timeout=1200)
    match = re.search(r"export DOCKER_HOST=(\S+)", setup.stdout)
    if setup.returncode != 0 or match is None:
        pytest.skip(f"no Docker daemon answers and {SETUP_PODMAN} failed: {setup.stderr[-500:]}")
    os.environ["DOCKER_HOST"] = match.group(1)
    if not _docker_answers():
        pytest.skip("podman was set up but the docker CLI does not reach its API socket")
    return "docker"


@pytest.fixture(scope="module")
def image(engine: str) -> str:
    """``make image`` once; returns the versioned reference the package names."""
    version = pkg.project_metadata(ROOT).version
    started = time.monotonic()
    built = subprocess.run(
        ["make", "-s", "image", "REGISTRY=localhost"], cwd=ROOT, capture_output=True, text=True, timeout=3600
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    print(f"make image: {time.monotonic() - started:.0f} s")
    return f"localhost/glacier-velocity:{version}"


def _inspect(engine: str, image: str) -> dict:
    return json.loads(
        subprocess.run([engine, "image", "inspect", image], capture_output=True, text=True, check=True).stdout
    )[0]


def _local_images(engine: str) -> set[str]:
    listing = subprocess.run(
        [engine, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True
    )
    return set(listing.stdout.split())


@pytest.mark.containers
def test_image_labels_user_and_contents(engine: str, image: str) -> None:
    info = _inspect(engine, image)
    labels = info["Config"]["Labels"]
    metadata = pkg.project_metadata(ROOT)
    assert labels["org.opencontainers.image.version"] == metadata.version
    assert labels["org.opencontainers.image.source"] == metadata.code_repository
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert info["Config"]["User"] == "glacier"
    print(f"image size: {info['Size'] / 1e6:.0f} MB")
    probe = subprocess.run(
        [
            engine,
            "run",
            "--rm",
            image,
            "sh",
            "-c",
            "id -u; ls /opt/glacier-velocity/notebooks; python -c 'import glacier_velocity; print(glacier_velocity.__version__)';"
            " command -v cwltool pytest || true",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.split()
    assert lines[0] == "1000"  # non-root
    assert lines[1:4] == ["01-discovery.ipynb", "02-correlation.ipynb", "03-aggregation.ipynb"]
    assert lines[4] == metadata.version
    assert len(lines) == 5  # neither cwltool nor pytest inside


@pytest.mark.containers
def test_package_in_containers_reproduces_the_run_without_containers(engine: str, image: str, tmp_path: Path) -> None:
    from glacier_velocity.demo.run import run_demo

    metadata = pkg.project_metadata(ROOT)
    document = pkg.build_package(ROOT / "cwl", image=image, metadata=metadata)
    package_file = pkg.write_package(document, tmp_path / f"glacier-velocity.{metadata.version}.cwl")
    before = _local_images(engine)

    started = time.monotonic()
    contained = demo_run.run_demo_in_containers(
        tmp_path / "containers", process=f"{package_file}#glacier-velocity", image=image, overrides=SEASON_2022
    )
    container_s = time.monotonic() - started
    started = time.monotonic()
    plain = run_demo(tmp_path / "plain", overrides=SEASON_2022, quiet=True)
    plain_s = time.monotonic() - started
    print(f"containers {container_s:.0f} s, no containers {plain_s:.0f} s")

    assert _local_images(engine) == before  # nothing was pulled
    assert "docker" in contained.log.lower() and image in contained.log  # the tools did run in the image
    assert contained.stats["pair_count"] == plain.stats["pair_count"] == 2, (contained.stats, plain.stats)
    assert contained.comparison is not None and plain.comparison is not None
    assert contained.comparison.recovered_m_per_yr == pytest.approx(plain.comparison.recovered_m_per_yr, abs=0.05)
    assert contained.comparison.n_points == plain.comparison.n_points
    assert contained.comparison.pixel_mae_m_per_yr == pytest.approx(plain.comparison.pixel_mae_m_per_yr, abs=0.05)
    catalog = json.loads((Path(contained.outputs["catalog"]["path"]) / "catalog.json").read_text())
    assert catalog["type"] == "Catalog"
    assert len([link for link in catalog["links"] if link["rel"] == "item"]) == 4  # two pairs, summary, provenance
    assert contained.run is not None and plain.run is not None
    assert [p.name for p in contained.run.correlation_notebooks] == [p.name for p in plain.run.correlation_notebooks]


@pytest.mark.containers
@pytest.mark.deploy  # eoap-cwlwrap and moto (make ades-setup)
def test_wrapped_package_in_containers_with_staged_items_and_outlines_by_url(
    engine: str, image: str, tmp_path: Path
) -> None:
    """An ADES's run, in containers: the scenes staged in as a Directory (the STAC API answers
    nothing), the outlines a URL every step that needs them reads itself, the catalog staged out
    to S3 (issue 24, items 1-3). The aggregation step had no network, so the URL failed the run
    after every pair; the stage tools named glacier-velocity:latest, a tag no registry has."""
    import rasterio

    from glacier_velocity import demo
    from glacier_velocity.demo.scenes import DEMO_OUTLINES_FILE
    from glacier_velocity.deploy.s3upload import s3_client
    from glacier_velocity.workflow import runner
    from helpers import moto_s3_server, wrap_package

    metadata = pkg.project_metadata(ROOT)
    package_file = pkg.write_package(
        pkg.build_package(ROOT / "cwl", image=image, metadata=metadata), tmp_path / "p.cwl"
    )
    wrapped = wrap_package(package_file, tmp_path)
    assert ":latest" not in wrapped.read_text()
    data = demo.generate_demo_data(tmp_path / "data")
    keys = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}
    with moto_s3_server(tmp_path) as s3_endpoint, deploy.serve_files(data.root) as files_url:
        client = s3_client(s3_endpoint, keys)
        client.create_bucket(Bucket="results")
        demo_run.items_with_http_assets(data.items, data.root, files_url, data.items.with_name("items-http.json"))
        job = runner.write_job(
            ROOT / demo.DEMO_PARAMS,
            tmp_path / "job.yml",
            staged_items={"value": f"{files_url}/stac/items-http.json"},
            glacier_outlines=f"{files_url}/{DEMO_OUTLINES_FILE}",
            stac_url="http://127.0.0.1:9",
            s3_bucket="results",
            sub_path="job",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=s3_endpoint,
            end_year=2022,
            end_month=7,
        )
        outputs, log = runner.run_cwltool(f"{wrapped}#main", job, tmp_path / "out", containers=True, quiet=True)
        assert outputs["catalog"]["value"] == "s3://results/job/catalog.json"
        keys_in_bucket = {o["Key"] for o in client.list_objects_v2(Bucket="results", Prefix="job/")["Contents"]}
        report = json.loads(client.get_object(Bucket="results", Key="job/run-report.json")["Body"].read())
        median = tmp_path / "summary_median_v.tif"
        client.download_file("results", "job/velocity-summary/summary_median_v.tif", str(median))
    assert "stage-in: 11 item(s) from" in log and "docker" in log.lower() and image in log
    assert "job/S2_99XXX_20220610_20220705/S2_99XXX_20220610_20220705.tif" in keys_in_bucket
    assert report["summary"] == "1 succeeded / 0 failed"
    # The aggregation step read the outlines from the URL: its headline is over them.
    with rasterio.open(median) as src:
        assert src.tags()["headline_region"] == "glacier outlines"
