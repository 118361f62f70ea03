cwlVersion: v1.2
class: CommandLineTool
id: aggregate
label: Summary of all pair velocities and the STAC catalog
doc: |
  Runs the aggregation notebook (notebooks/03-aggregation.ipynb) with papermill: collects the
  pair statuses into the run report (run-report.json - every pair attempted, succeeded or
  failed with its reason, and "N succeeded / M failed"), stacks every successful pair's
  velocity product on the first product's grid and writes the per-pixel median speed,
  median vx and vy, standard deviation of speed and valid-map count (COGs, m/yr), the summary
  figure and the time series figure, and a self-contained STAC catalog (catalog.json, relative
  links) holding an item per pair product, one for the summary and the run report. When
  discovery found no pairs it writes the run report and an empty catalog and says why. When
  every pair attempted failed the tool fails (non-zero exit) with each pair's reason.

hints:
  DockerRequirement:
    dockerPull: glacier-velocity:latest
requirements:
  InlineJavascriptRequirement:
    expressionLib:
      - $include: lib/papermill.js
      - $include: lib/inputs.js
  # The network only when the step reads an input from a URL itself (outlines, points or the AOI
  # given as an http(s) URL); a File, GeoJSON text or lon,lat pairs need none, and a container
  # without network access could not fetch the URL.
  NetworkAccess:
    networkAccess: $(reads_url([inputs.aoi, inputs.glacier_outlines, inputs.points_of_interest]))
  ResourceRequirement:
    coresMin: 1
    coresMax: 1
    ramMin: 1024
    ramMax: 4096

baseCommand: papermill
arguments:
  - valueFrom: $(inputs.notebook.path)
    position: 1
  - valueFrom: aggregation.ipynb
    position: 2
  - valueFrom: python3
    prefix: --kernel
    position: 3
  - valueFrom: --no-progress-bar
    position: 4
  # papermill's engine with the kernel stopped at once after the last cell: 0.3 s a notebook
  # (src/glacier_velocity/workflow/notebook_engine.py).
  - valueFrom: glacier_velocity
    prefix: --engine
    position: 4
  - valueFrom: $(papermill_parameters(inputs))
    prefix: -y
    position: 5

inputs:
  notebook:
    type: File
    label: Aggregation notebook
    doc: The papermill notebook this tool executes; the default is the one next to this workflow.
    default:
      class: File
      location: ../notebooks/03-aggregation.ipynb
  products:
    type: Directory[]
    label: Velocity products
    doc: The product directories of the pairs that succeeded, written by the correlation tool (velocity COG, quicklook, STAC item each).
  statuses:
    type: File[]
    label: Pair statuses
    doc: The status file of every pair attempted (status_<pair_id>.json from the correlation tool); when empty, every product directory counts as a pair that succeeded.
    default: []
  message:
    type: string
    label: Discovery message
    doc: Account of the discovery step, reported when there are no products.
    default: ""
  min_count:
    type: int
    label: Minimum valid maps
    doc: Pixels with fewer valid velocity maps than this get no median or spread (the count map keeps the true number); whole number >= 1.
    default: 1
  resampling:
    type:
      type: enum
      symbols: [nearest, bilinear]
    label: Resampling
    doc: How a product on another grid than the first product's is brought onto it - nearest or bilinear (products of one run share one grid).
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
    doc: Glacier outlines (polygons of ice, e.g. RGI 7.0) as GeoJSON - a File (staged into each step), or a string - an http(s) URL, the GeoJSON text or, in local runs without containers, a path - in lon/lat or the CRS its `crs` member names. The headline speed and the time series are taken over them, and they are drawn on the summary figure.
  aoi:
    type: ["null", File, string]
    label: Area of interest
    doc: The run's area of interest (a GeoJSON File, or a string - "W,S,E,N", GeoJSON text, an http(s) URL or, in local runs without containers, a path), stored once beside the summary (summary/aoi.geojson, an asset of the summary item) and cutting its footprint; each pair item records only its source, bbox, vertex count and SHA-256.
  points_of_interest:
    type: ["null", File, string]
    label: Points of interest
    doc: Points where each pair's speed is sampled for the time series - "lon,lat; lon,lat" or GeoJSON points (a File, staged into the step, or a URL or the text; a `name` property names a point); the headline region when no outlines are given.

outputs:
  executed_notebook:
    type: File
    label: Executed aggregation notebook
    doc: The aggregation notebook with its outputs (summary maps, time series, statistics) and glued results.
    outputBinding:
      glob: aggregation.ipynb
  summary_cogs:
    type: File[]
    label: Summary maps
    doc: COGs of the median speed, median vx, median vy, standard deviation of speed (m/yr) and valid-map count; empty without products.
    outputBinding:
      glob: summary/summary_*.tif
  summary_figure:
    type: File?
    label: Summary figure
    doc: PNG of the median speed, its spread and the valid-map count, with colour bars in m/yr; absent without products.
    outputBinding:
      glob: summary/summary_figure.png
  time_series_figure:
    type: File?
    label: Time series figure
    doc: PNG of the median glacier speed of each pair (m/yr) against time; absent without products.
    outputBinding:
      glob: summary/time_series.png
  datacube:
    type: File?
    label: Velocity datacube
    doc: CF-1.8 NetCDF with every pair on the common grid, dimensions (mid_date, y, x) - vx, vy, v (m/yr) and acquisition dates; absent without products.
    outputBinding:
      glob: summary/velocity_datacube.nc
  catalog:
    type: Directory
    label: STAC catalog
    doc: Self-contained STAC catalog (catalog.json with relative links) of the pair products, the summary and the run report.
    outputBinding:
      glob: catalog
  run_report:
    type: File
    label: Run report
    doc: JSON report of the run - every pair attempted with its status (succeeded or failed) and the reason of each failure, and the counts "N succeeded / M failed".
    outputBinding:
      glob: run-report.json
