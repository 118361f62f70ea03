cwlVersion: v1.2
class: CommandLineTool
id: correlate
label: Velocity of one image pair
doc: |
  Runs the correlation notebook (notebooks/02-correlation.ipynb) with papermill on one pair of
  scenes: reads the near-infrared band (B08, 10 m) of two Sentinel-2 scenes, or the panchromatic
  band (B8, 15 m) of two Landsat 8/9 Collection 2 Level-1 scenes, over the area of interest, tracks features with the search range scaled to the pair's baseline and the
  maximum speed, and writes the velocity product (COG with vx, vy, v in m/yr and quality
  bands), a quicklook PNG and a STAC item into a directory named after the pair. Run it alone
  with a job file giving the two item URLs, e.g. `cwltool cwl/correlate.cwl params/pair.yml`.

  It always writes the pair's status (`status_<pair_id>.json`). When the pair fails for a
  reason of its own (unreadable or corrupt scene, scenes that do not overlap, nothing
  trackable), the status records the error and its message, the product outputs are null and
  the tool still succeeds, so one bad pair does not stop a batch. Invalid parameters and
  programming errors still fail the tool.

hints:
  DockerRequirement:
    dockerPull: glacier-velocity:latest
requirements:
  NetworkAccess:
    networkAccess: true
  # cwltool --parallel gives a job its coresMax/ramMax when the machine has that much, and
  # starts a job only when its share fits beside the running ones: with coresMax 2 a pair took
  # both cores of a 2-core machine and the pairs ran one at a time. One core each lets two
  # pairs overlap there (the tracking's threads still use every core; the rest of a pair -
  # kernel start, imports, reads, figures - is one thread).
  ResourceRequirement:
    coresMin: 1
    coresMax: 1
    ramMin: 1024
    ramMax: 4096
  # The kernel is not started by the command line, so it never calls io.memory.tune_allocator:
  # glibc reads the same malloc settings from these variables when papermill and the kernel start
  # (io.memory.ALLOCATOR_ENVIRONMENT; a test holds them equal). Without them the engine's worker
  # threads map and zero their temporaries afresh for every strip (a 5490 px track process with
  # threads started first: 9.6 against 8.4 s of CPU; docs/design/0007, section 5).
  EnvVarRequirement:
    envDef:
      MALLOC_ARENA_MAX: "1"
      MALLOC_MMAP_THRESHOLD_: "33554432"
      MALLOC_TRIM_THRESHOLD_: "536870912"

baseCommand: papermill
arguments:
  - valueFrom: $(inputs.notebook.path)
    position: 1
  - valueFrom: correlation_$(inputs.pair_id).ipynb
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

# Each input but the notebook is the notebook parameter of the same name, without JavaScript
# (no node process to start, 0.5 s of a step run alone): strings raw (-rNAME VALUE, papermill
# passes them as they are), numbers through papermill's own int-or-float reading (-pNAME VALUE),
# booleans as YAML (-y 'NAME: true'). A null optional input adds nothing, and the notebook's
# default for it is None.
inputs:
  notebook:
    type: File
    label: Correlation notebook
    doc: The papermill notebook this tool executes; the default is the one next to this workflow.
    default:
      class: File
      location: ../notebooks/02-correlation.ipynb
  pair_id:
    inputBinding: {prefix: -rpair_id, position: 6}
    type: string
    label: Pair id
    doc: Name of the pair's output directory and executed notebook (letters, digits, - and _), e.g. 43SEA_20200601_20200721.
    default: pair
  reference_href:
    inputBinding: {prefix: -rreference_href, position: 6}
    type: string
    label: Reference scene
    doc: URL or absolute path of the STAC item of the earlier scene (with a `nir` asset), or its path relative to staged_items.
  secondary_href:
    inputBinding: {prefix: -rsecondary_href, position: 6}
    type: string
    label: Secondary scene
    doc: URL or absolute path of the STAC item of the later scene (with a `nir` asset), or its path relative to staged_items.
  staged_items:
    inputBinding: {prefix: -rstaged_items, position: 6}
    type: Directory?
    label: Staged STAC items
    doc: The Directory of staged STAC items discovery chose the pair from; relative item hrefs are read from it (the item and its asset files).
  aoi:
    inputBinding: {prefix: -raoi, position: 6}
    type: ["null", File, string]
    label: Area of interest
    doc: 'Area of interest in degrees of longitude/latitude (WGS 84) - a GeoJSON File with a Polygon or MultiPolygon, such as a glacier outline (staged into each step), or a string - "W,S,E,N" (e.g. 75.194,36.201,75.424,36.411), inline GeoJSON text, or the http(s) URL (or, in local runs without containers, the path) of a GeoJSON file. Discovery searches scenes intersecting it; each pair is read over its bounding box, and points outside the polygon are nodata in every product. Where both scenes overlap when empty.'
  max_velocity_m_per_yr:
    inputBinding: {prefix: -pmax_velocity_m_per_yr, position: 6}
    type: float
    label: Maximum speed
    doc: Fastest surface speed expected anywhere in the area, m/yr; sets the search range with the baseline.
    default: 1000.0
  grid_spacing_px:
    inputBinding: {prefix: -pgrid_spacing_px, position: 6}
    type: int
    label: Grid spacing
    doc: Distance between tracking grid points, pixels (10 m each for B08).
    default: 12
  chip_px:
    inputBinding: {prefix: -pchip_px, position: 6}
    type: int
    label: Chip size
    doc: Side of the square reference chip matched around each grid point, pixels (even, 8-256).
    default: 32
  filter:
    inputBinding: {prefix: -rfilter, position: 6}
    type:
      type: enum
      symbols: [wallis, hps, oc, none]
    label: Image filter
    doc: Pre-filter before matching - wallis (local contrast normalisation), hps (high-pass), oc (orientation correlation) or none.
    default: wallis
  engine:
    inputBinding: {prefix: -rengine, position: 6}
    type:
      type: enum
      symbols: [ncc, autorift]
    label: Tracking engine
    doc: ncc (this package's normalized cross-correlation engine) or autorift (NASA JPL autoRIFT, when installed).
    default: ncc
  mask_clouds:
    inputBinding: {prefix: -y, valueFrom: 'mask_clouds: $(self)', position: 6}
    type: boolean
    label: Mask clouds
    doc: Mask clouds, cloud shadows and defective pixels from the items' scene classification (Sentinel-2 `scl`, Landsat `qa_pixel`) assets, when they have them.
    default: false
  stable_correction:
    inputBinding: {prefix: -y, valueFrom: 'stable_correction: $(self)', position: 6}
    type: boolean
    label: Stable-ground correction
    doc: Measure each pair's misregistration on stable ground, remove it from vx, vy and v and estimate their 1-sigma errors; false keeps the raw offsets.
    default: true
  min_correlation_baseline_days:
    inputBinding: {prefix: -pmin_correlation_baseline_days, position: 6}
    type: float
    label: Shortest baseline correlated
    doc: A pair whose scenes are less than this many days apart is refused (recorded as failed); over seconds or hours sub-pixel noise reads as absurd speeds.
    default: 1.0
  glacier_outlines:
    inputBinding: {prefix: -rglacier_outlines, position: 6}
    type: ["null", File, string]
    label: Glacier outlines
    doc: Glacier outlines (polygons of ice, e.g. RGI 7.0) as GeoJSON - a File (staged into each step), or a string - an http(s) URL, the GeoJSON text or, in local runs without containers, a path - in lon/lat or the CRS its `crs` member names. Stable ground for the correction is the ground outside them, and they are drawn on the quicklooks; without them stable ground is the land the items' scl (or qa_pixel) assets show as neither snow/ice, water nor cloud, and the product says how it was found or why no correction was applied.
  stac_url:
    inputBinding: {prefix: -rstac_url, position: 6}
    type: string
    label: STAC API URL
    doc: Root URL of the STAC API the two items come from; GLACIER_VELOCITY_STAC_TOKEN (environment), when set, is sent with the item fetches to its origin only, never to another host nor with the asset reads.
    default: https://earth-search.aws.element84.com/v1

outputs:
  executed_notebook:
    type: File
    label: Executed correlation notebook
    doc: The correlation notebook with its outputs (both images, the velocity quicklook, statistics) and glued results.
    outputBinding:
      glob: correlation_$(inputs.pair_id).ipynb
  product:
    type: Directory?
    label: Velocity product directory
    doc: The pair's velocity COG, quicklook PNG and STAC item, side by side so the item's relative asset links hold; null when the pair failed.
    outputBinding:
      glob: $(inputs.pair_id)
  velocity:
    type: File?
    label: Velocity COG
    doc: Cloud-Optimized GeoTIFF with bands vx, vy, v (m/yr), dx, dy (px), peak and snr; NaN where no match. Null when the pair failed.
    outputBinding:
      glob: $(inputs.pair_id)/*.tif
  quicklook:
    type: File?
    label: Velocity quicklook
    doc: PNG of the speed (m/yr) with a colour bar and flow arrows over the reference image; null when the pair failed.
    outputBinding:
      glob: $(inputs.pair_id)/*.png
  item:
    type: File?
    label: Velocity STAC item
    doc: STAC item describing the velocity product (geometry, dates, both source scenes, projection, assets); null when the pair failed.
    outputBinding:
      glob: $(inputs.pair_id)/*.json
  status:
    type: File
    label: Pair status
    doc: JSON record of the pair's outcome - pair and scene ids, status succeeded or failed, error type and reason, product name, median speed (m/yr); one element of the run report.
    outputBinding:
      glob: status_$(inputs.pair_id).json
