"""The engine on real Sentinel-2 texture: a stable-ground pair whose only 'motion' is a
smooth misregistration (../shared/data/real-s2-t33uuu, see /work/shared/data/README.md).

Without tie points the precision is the scatter left after removing a smooth (cubic) fit of
the field. autoRIFT 2.1.1 on the same crop and grid: residual NMAD 0.150 px, p90 0.307 px,
69.1 % valid (benchmarks/README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import from_bounds

from glacier_velocity.tracking import TrackingParams, track_offsets
from glacier_velocity.tracking.precision import stable_scatter

PAIR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-s2-t33uuu"
REFERENCE = PAIR_DIR / "ref_S2A_20160608T153121_T33UUU_sub.jp2"
SECONDARY = PAIR_DIR / "tgt_S2A_20160529T153631_T33UUU_sub.jp2"

pytestmark = pytest.mark.skipif(
    not (REFERENCE.is_file() and SECONDARY.is_file()),
    reason=f"the real Sentinel-2 pair is not in {PAIR_DIR} (../shared next to the project is absent)",
)


@pytest.fixture(scope="module")
def offsets():
    with rasterio.open(REFERENCE) as ref, rasterio.open(SECONDARY) as sec:
        left, right = max(ref.bounds.left, sec.bounds.left), min(ref.bounds.right, sec.bounds.right)
        bottom, top = max(ref.bounds.bottom, sec.bounds.bottom), min(ref.bounds.top, sec.bounds.top)
        reference, secondary = (
            src.read(1, window=from_bounds(left, bottom, right, top, src.transform).round_offsets().round_lengths())
            for src in (ref, sec)
        )
    assert reference.shape == secondary.shape == (2703, 1856)
    return track_offsets(reference, secondary, TrackingParams(search_px=5.0), progress=False)


def test_real_pair_scatter_and_coverage(offsets):
    scatter = stable_scatter(offsets)
    # Measured: NMAD 0.149 px, p90 0.344 px, 67.1 % valid (a cloud and its shadow, lakes
    # and fields that changed in 10 days are rightly rejected).
    assert scatter.nmad_px <= 0.155
    assert scatter.p90_px <= 0.36
    assert 0.64 <= scatter.valid_fraction <= 0.75


def test_real_pair_finds_the_known_misregistration(offsets):
    # The data's README: about 6 m east-west and 18 m north-south at 10 m pixels.
    assert 0.4 <= float(np.nanmedian(offsets.dx)) <= 0.9
    assert 1.5 <= abs(float(np.nanmedian(offsets.dy))) <= 2.1
