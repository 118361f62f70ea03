"""How right is a demo run? The recovered median glacier speed against the demo's truth."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ..errors import InputError
from ..io.raster import pixel_centres
from .scenes import DEMO_EPSG

#: The demo's truth check: the median glacier speed within 3 % of the truth and a per-point
#: mean absolute error of at most 10 m/yr. Every demo scene has its own geolocation error
#: (up to about 1 px, so pairs are off by up to 1.3 px, 50-190 m/yr), so only a working
#: stable-ground correction passes (design 0006 has both figures).
MEDIAN_TOLERANCE = 0.03
PIXEL_MAE_TOLERANCE_M_PER_YR = 10.0


@dataclass(frozen=True)
class TruthComparison:
    """Recovered against true median speed over the demo glacier.

    Attributes
    ----------
    recovered_m_per_yr : float
        Median over glacier grid points of the aggregated median speed (m/yr).
    true_m_per_yr : float
        Median over the same points of the true median speed (m/yr).
    error_m_per_yr : float
        ``recovered - true`` (m/yr).
    relative_error : float
        ``error / true`` (dimensionless).
    pixel_mae_m_per_yr : float
        Mean absolute per-point difference over glacier points with a value (m/yr).
    n_points : int
        Glacier grid points compared (finite recovered value, true speed above the threshold).
    coverage : float
        Fraction of glacier grid points with a recovered value (0..1).
    """

    recovered_m_per_yr: float
    true_m_per_yr: float
    error_m_per_yr: float
    relative_error: float
    pixel_mae_m_per_yr: float
    n_points: int
    coverage: float

    @property
    def passed(self) -> bool:
        """Whether the run passes the truth check (:data:`MEDIAN_TOLERANCE`, :data:`PIXEL_MAE_TOLERANCE_M_PER_YR`)."""
        return abs(self.relative_error) <= MEDIAN_TOLERANCE and self.pixel_mae_m_per_yr <= PIXEL_MAE_TOLERANCE_M_PER_YR

    def describe(self) -> str:
        """One line: recovered vs true median speed, the errors and the verdict of the check."""
        verdict = "passes" if self.passed else "FAILS"
        return (
            f"median glacier speed {self.recovered_m_per_yr:.1f} m/yr recovered vs {self.true_m_per_yr:.1f} m/yr true: "
            f"error {self.error_m_per_yr:+.1f} m/yr ({100 * self.relative_error:+.1f} %), per-point mean abs. error "
            f"{self.pixel_mae_m_per_yr:.1f} m/yr over {self.n_points} points ({100 * self.coverage:.0f} % of the glacier); "
            f"{verdict} the check (within {100 * MEDIAN_TOLERANCE:g} % and <= {PIXEL_MAE_TOLERANCE_M_PER_YR:g} m/yr)"
        )


def compare_with_truth(
    median_speed_tif: str | os.PathLike[str],
    truth_json: str | os.PathLike[str],
    truth_map: str | None = None,
) -> TruthComparison:
    """Compare an aggregated median speed map with the demo truth.

    Each grid point of the recovered map (its pixel centre, a measurement position) is
    looked up in the 10 m true median speed map; points whose true speed exceeds the glacier
    threshold form the glacier.

    Parameters
    ----------
    median_speed_tif : path-like
        Speed map in EPSG:32643, any grid (m/yr, NaN = nodata): an aggregated median speed
        COG (band 1) or a pair's velocity COG (its band ``v``, not band 1, the east velocity).
    truth_json : path-like
        ``truth.json`` written by :func:`~glacier_velocity.demo.scenes.write_truth`.
    truth_map : str, optional
        File name (next to ``truth_json``) of the true speed map to compare with; default the
        expected median over the demo pairs. ``truth_speed_2022.tif`` suits a run on 2022 only.

    Returns
    -------
    TruthComparison
    """
    truth_path = Path(truth_json)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    with rasterio.open(truth_path.parent / (truth_map or truth["median_speed_map"])) as src:
        true_map = src.read(1).astype(float)
        true_inverse = ~src.transform
    with rasterio.open(median_speed_tif) as src:
        if "v" in src.descriptions:
            band = src.descriptions.index("v") + 1
        elif src.count == 1:
            band = 1
        else:
            raise InputError(
                f"{median_speed_tif}: {src.count} bands {src.descriptions} and none is the speed 'v'; "
                "give a median speed map or a pair's velocity COG"
            )
        recovered = src.read(band, masked=True).filled(np.nan).astype(float)
        transform = src.transform
        if src.crs is None or src.crs.to_epsg() != DEMO_EPSG:
            raise InputError(f"{median_speed_tif}: expected a map in EPSG:{DEMO_EPSG}, got {src.crs}")
    rr, cc = np.mgrid[0 : recovered.shape[0], 0 : recovered.shape[1]]
    xs, ys = pixel_centres(transform, rr, cc)
    tc, tr = true_inverse @ (xs, ys)
    tr_i, tc_i = np.floor(tr).astype(int), np.floor(tc).astype(int)
    inside = (tr_i >= 0) & (tr_i < true_map.shape[0]) & (tc_i >= 0) & (tc_i < true_map.shape[1])
    true_at = np.full(recovered.shape, np.nan)
    true_at[inside] = true_map[tr_i[inside], tc_i[inside]]
    glacier = inside & (true_at > float(truth["glacier_speed_threshold_m_per_yr"]))
    measured = glacier & np.isfinite(recovered)
    if not measured.any():
        raise InputError(f"{median_speed_tif}: no valid speed on the demo glacier; the tracking recovered nothing")
    recovered_median = float(np.median(recovered[measured]))
    true_median = float(np.median(true_at[measured]))
    error = recovered_median - true_median
    return TruthComparison(
        recovered_m_per_yr=recovered_median,
        true_m_per_yr=true_median,
        error_m_per_yr=error,
        relative_error=error / true_median,
        pixel_mae_m_per_yr=float(np.mean(np.abs(recovered[measured] - true_at[measured]))),
        n_points=int(measured.sum()),
        coverage=float(measured.sum() / glacier.sum()),
    )
