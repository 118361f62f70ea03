cwlVersion: v1.2
class: Workflow
id: glacier-velocity
label: Glacier surface velocity from Sentinel-2 image pairs
doc: |
  Measures glacier surface velocity (m/yr) from Sentinel-2 near-infrared (B08, 10 m) image
  pairs. Discovery searches a STAC API for scenes over the area of interest within a season
  and pairs them in time; the pair list is read back from the executed discovery notebook;
  each pair is correlated (feature tracking, search range from the maximum speed and the
  baseline) into a velocity COG, quicklook and STAC item; aggregation writes per-pixel median,
  spread and count maps, a summary figure, a time series and a self-contained STAC catalog.
  Every step is a papermill notebook kept, executed, among the outputs. A pair that fails
  (corrupt scene, no overlap, nothing trackable) does not stop the run: it is recorded with
  its reason in the run report, and the summary uses every pair that succeeded and states
  "N succeeded / M failed". When every pair attempted fails, the aggregation step fails with
  each pair's reason, so the run ends non-zero. When no pairs are found the run still
  succeeds, with an empty catalog and a message saying which filter removed the scenes.

requirements:
  ScatterFeatureRequirement: {}
  MultipleInputFeatureRequirement: {}
  StepInputExpressionRequirement: {}
  # text_as_file: the GeoJSON inputs (aoi, glacier_outlines, points_of_interest) reach each step
  # as a file when their text is too long for a command-line argument (lib/inputs.js).
  InlineJavascriptRequirement:
    expressionLib:
      - $include: lib/inputs.js

inputs:
  stac_url:
    type: string
    label: STAC API URL
    doc: Root URL of a STAC API to search, e.g. Earth Search v1.
    default: https://earth-search.aws.element84.com/v1
  collection:
    type: string
    label: STAC collection
    doc: Collection of Sentinel-2 L2A items with a `nir` (B08, 10 m) asset.
    default: sentinel-2-l2a
  staged_items:
    type: Directory?
    label: Staged STAC items
    doc: A Directory of STAC items a platform staged before the run - a catalog.json linking the items, whose assets are files beside them (relative hrefs), as the OGC Best Practice for EO Application Packages has it. With it (or item_urls) the STAC API is not searched - discovery takes the given items that fall in a season and intersect the area of interest, and every other filter is the same - and each pair's step reads its two items and their assets from the Directory, so no step needs the internet.
  item_urls:
    # Not optional (string[]?): OGC's ap-validator 0.5.0 crashes on an optional array input.
    type: string[]
    label: STAC item URLs
    doc: http(s) URLs of STAC items (Sentinel-2 L2A with a `nir` asset) to use instead of searching the STAC API, with or without staged_items; the steps fetch them and their assets.
    default: []
  aoi:
    type: [File, string]
    label: Area of interest
    doc: 'Area of interest in degrees of longitude/latitude (WGS 84) - a GeoJSON File with a Polygon or MultiPolygon, such as a glacier outline (staged into each step), or a string - "W,S,E,N" (e.g. 75.194,36.201,75.424,36.411), inline GeoJSON text, or the http(s) URL (or, in local runs without containers, the path) of a GeoJSON file. Discovery searches scenes intersecting it; each pair is read over its bounding box, and points outside the polygon are nodata in every product.'
  start_year:
    type: int
    label: First season year
    doc: First year of the seasons to search (calendar year; for a season wrapping the year end, the year it starts).
  end_year:
    type: int
    label: Last season year
    doc: Last year of the seasons to search (inclusive).
  start_month:
    type: int
    label: First month of the season
    doc: Month number 1-12; when larger than `end_month` the season wraps the year end (e.g. 11 to 2).
    default: 5
  end_month:
    type: int
    label: Last month of the season
    doc: Month number 1-12 (inclusive).
    default: 10
  max_cloud_cover:
    type: float
    label: Maximum cloud cover
    doc: Largest scene cloud cover accepted, percent (0-100), from `eo:cloud_cover`.
    default: 10.0
  pairs_per_image:
    type: int
    label: Pairs per image
    doc: Each selected scene is paired with the next N selected scenes (N >= 1).
    default: 2
  min_baseline_days:
    type: float?
    label: Minimum baseline
    doc: Shortest time between the two scenes of a pair, days; no lower limit when empty.
  max_baseline_days:
    type: float?
    label: Maximum baseline
    doc: Longest time between the two scenes of a pair, days; no upper limit when empty.
  tile:
    type: string?
    label: MGRS tile
    doc: Use only scenes of this MGRS tile (e.g. 43SEA); by default the tile covering the area of interest best.
  aoi_cloud_cover:
    type: boolean
    label: Cloud cover over the area of interest
    doc: Judge cloud cover over the area of interest from the scene classification (`scl`) asset instead of the whole tile, when the asset exists.
    default: false
  max_items:
    type: int
    label: Most items fetched
    doc: Upper bound on the items fetched from the STAC API over all season years (a guard against a huge search).
    default: 5000
  max_pairs:
    type: int
    label: Most pairs
    doc: Most pairs the discovery may give (each is a tracking job); more is refused before any pair is built.
    default: 2000
  max_velocity_m_per_yr:
    type: float
    label: Maximum speed
    doc: Fastest surface speed expected anywhere in the area, m/yr; sets each pair's search range with its baseline.
    default: 1000.0
  grid_spacing_px:
    type: int
    label: Grid spacing
    doc: Distance between tracking grid points, pixels (10 m each for B08).
    default: 12
  chip_px:
    type: int
    label: Chip size
    doc: Side of the square reference chip matched around each grid point, pixels (even, 8-256).
    default: 32
  filter:
    type:
      type: enum
      symbols: [wallis, hps, oc, none]
    label: Image filter
    doc: Pre-filter before matching - wallis (local contrast normalisation), hps (high-pass), oc (orientation correlation) or none.
    default: wallis
  engine:
    type:
      type: enum
      symbols: [ncc, autorift]
    label: Tracking engine
    doc: ncc (this package's normalized cross-correlation engine) or autorift (NASA JPL autoRIFT, when installed).
    default: ncc
  mask_clouds:
    type: boolean
    label: Mask clouds
    doc: Mask clouds, cloud shadows and defective pixels from the items' scene classification (Sentinel-2 `scl`, Landsat `qa_pixel`) assets, when they have them.
    default: false
  stable_correction:
    type: boolean
    label: Stable-ground correction
    doc: Measure each pair's misregistration on stable ground, remove it from vx, vy and v and estimate their 1-sigma errors; false keeps the raw offsets.
    default: true
  min_correlation_baseline_days:
    type: float
    label: Shortest baseline correlated
    doc: A pair whose scenes are less than this many days apart is refused (recorded as failed); over seconds or hours sub-pixel noise reads as absurd speeds.
    default: 1.0
  min_count:
    type: int
    label: Minimum valid maps
    doc: Pixels with fewer valid velocity maps than this get no median or spread in the summary (the count map keeps the true number); whole number >= 1.
    default: 1
  resampling:
    type:
      type: enum
      symbols: [nearest, bilinear]
    label: Resampling
    doc: How a product on another grid than the first product's is brought onto it in the summary - nearest or bilinear.
    default: nearest
  max_pair_error_m_per_yr:
    type: float
    label: Largest pair error
    doc: A pair whose typical 1-sigma speed error (median v_error, m/yr) exceeds this is left out of the summary; the run report lists it with the reason.
    default: 100.0
  keep_uncorrected_pairs:
    type: boolean
    label: Keep uncorrected pairs
    doc: Keep in the summary the pairs whose stable-ground correction was not applied (no stable ground found, an implausible shift, correction turned off) or that have no error estimate. By default they are left out and the run report lists each with its reason - their speeds include the pair's misregistration.
    default: false
  glacier_outlines:
    type: ["null", File, string]
    label: Glacier outlines
    doc: Glacier outlines (polygons of ice, e.g. RGI 7.0) as GeoJSON - a File (staged into each step), or a string - an http(s) URL, the GeoJSON text or, in local runs without containers, a path - in lon/lat or the CRS its `crs` member names. Used for each pair's stable-ground correction (the ground outside them) and for the headline speed and the time series, and drawn on the quicklooks and the summary figure; without them stable ground is the land the items' scl (or qa_pixel) assets show as neither snow/ice, water nor cloud.
  points_of_interest:
    type: ["null", File, string]
    label: Points of interest
    doc: Points where each pair's speed is sampled for the time series - "lon,lat; lon,lat" or GeoJSON points (a File, staged into the step, or a URL or the text; a `name` property names a point); the headline region when no outlines are given.

steps:
  node_discover:
    label: Discovery
    doc: Search the STAC API, select one scene per month in the season, build the pairs.
    run: discover.cwl
    in:
      stac_url: stac_url
      collection: collection
      staged_items: staged_items
      item_urls: item_urls
      aoi:
        source: aoi
        valueFrom: $(text_as_file(self, "aoi.geojson"))
      start_year: start_year
      end_year: end_year
      start_month: start_month
      end_month: end_month
      max_cloud_cover: max_cloud_cover
      pairs_per_image: pairs_per_image
      min_baseline_days: min_baseline_days
      max_baseline_days: max_baseline_days
      tile: tile
      aoi_cloud_cover: aoi_cloud_cover
      max_items: max_items
      max_pairs: max_pairs
    out: [executed_notebook, pairs_json]

  node_extract_pairs:
    label: Pair list
    doc: Read the pair list glued by the executed discovery notebook as CWL records.
    run: extract_pairs.cwl
    in:
      notebook: node_discover/executed_notebook
    out: [pairs, message]

  node_correlate:
    label: Correlation
    doc: Track features and write the velocity product of each pair (scattered over the pairs).
    run: correlate.cwl
    scatter: pair
    in:
      pair: node_extract_pairs/pairs
      pair_id:
        valueFrom: $(inputs.pair.id)
      reference_href:
        valueFrom: $(inputs.pair.reference_href)
      secondary_href:
        valueFrom: $(inputs.pair.secondary_href)
      staged_items: staged_items
      aoi:
        source: aoi
        valueFrom: $(text_as_file(self, "aoi.geojson"))
      max_velocity_m_per_yr: max_velocity_m_per_yr
      grid_spacing_px: grid_spacing_px
      chip_px: chip_px
      filter: filter
      engine: engine
      mask_clouds: mask_clouds
      stable_correction: stable_correction
      min_correlation_baseline_days: min_correlation_baseline_days
      glacier_outlines:
        source: glacier_outlines
        valueFrom: $(text_as_file(self, "glacier_outlines.geojson"))
      stac_url: stac_url
    out: [executed_notebook, product, velocity, quicklook, item, status]

  node_aggregate:
    label: Aggregation
    doc: Run report over all pairs; median, spread and count maps, figures and the STAC catalog over the pairs that succeeded.
    run: aggregate.cwl
    in:
      products:
        # Failed pairs have no product: drop their nulls from the scattered list.
        source: [node_correlate/product]
        linkMerge: merge_flattened
        pickValue: all_non_null
      statuses: node_correlate/status
      message: node_extract_pairs/message
      min_count: min_count
      resampling: resampling
      max_pair_error_m_per_yr: max_pair_error_m_per_yr
      keep_uncorrected_pairs: keep_uncorrected_pairs
      glacier_outlines:
        source: glacier_outlines
        valueFrom: $(text_as_file(self, "glacier_outlines.geojson"))
      points_of_interest:
        source: points_of_interest
        valueFrom: $(text_as_file(self, "points_of_interest.geojson"))
      aoi:
        source: aoi
        valueFrom: $(text_as_file(self, "aoi.geojson"))
    out: [executed_notebook, summary_cogs, summary_figure, time_series_figure, datacube, catalog, run_report]

  node_collect:
    label: Catalog of the run
    doc: Copy the aggregation catalog and add the executed notebooks, the pair list and the pair statuses (item run-provenance).
    run: collect.cwl
    in:
      aggregation_catalog: node_aggregate/catalog
      notebooks:
        source: [node_discover/executed_notebook, node_correlate/executed_notebook, node_aggregate/executed_notebook]
        linkMerge: merge_flattened
      records:
        source: [node_discover/pairs_json, node_correlate/status]
        linkMerge: merge_flattened
    out: [catalog]

outputs:
  catalog:
    type: Directory
    label: STAC catalog
    doc: |
      The run's only output: a self-contained STAC catalog (catalog.json, relative links) with an
      item per pair product (velocity COG, quicklook), the summary item (median, spread and count
      COGs, summary and time series figures), the run report (run-report.json) and the item
      run-provenance holding the executed notebooks, the pair list and the pair statuses.
    outputSource: node_collect/catalog
