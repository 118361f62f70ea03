cwlVersion: v1.2
class: CommandLineTool
id: discover
label: Discover Sentinel-2 scenes and pair them
doc: |
  Runs the discovery notebook (notebooks/01-discovery.ipynb) with papermill: searches a STAC
  API for Sentinel-2 L2A scenes over the area of interest, keeps the first suitable scene of
  each month in the season, builds the image pairs and writes them to pairs.json. The executed
  notebook (tables, timeline plot, glued pair list) is kept as provenance. Finding no scenes or
  no pairs is not an error: the pair list is then empty and the notebook says which filter
  removed what.

hints:
  DockerRequirement:
    dockerPull: glacier-velocity:latest
requirements:
  NetworkAccess:
    networkAccess: true
  ResourceRequirement:
    coresMin: 1
    coresMax: 1
    ramMin: 1024
    ramMax: 2048

baseCommand: papermill
arguments:
  - valueFrom: $(inputs.notebook.path)
    position: 1
  - valueFrom: discovery.ipynb
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
    label: Discovery notebook
    doc: The papermill notebook this tool executes; the default is the one next to this workflow.
    default:
      class: File
      location: ../notebooks/01-discovery.ipynb
  stac_url:
    inputBinding: {prefix: -rstac_url, position: 6}
    type: string
    label: STAC API URL
    doc: Root URL of a STAC API to search, e.g. Earth Search v1.
    default: https://earth-search.aws.element84.com/v1
  collection:
    inputBinding: {prefix: -rcollection, position: 6}
    type: string
    label: STAC collection
    doc: Collection of Sentinel-2 L2A items with a `nir` (B08, 10 m) asset.
    default: sentinel-2-l2a
  staged_items:
    inputBinding: {prefix: -rstaged_items, position: 6}
    type: Directory?
    label: Staged STAC items
    doc: A Directory of STAC items a platform staged before the run - a catalog.json linking the items, whose assets are files beside them (relative hrefs). With it (or item_urls) the STAC API is not searched - discovery takes the given items that fall in a season and intersect the area of interest, and every other filter is the same; the pairs name these items by their paths relative to the Directory.
  item_urls:
    inputBinding: {prefix: -y, valueFrom: 'item_urls: $(self)', position: 6}
    # Not optional (string[]?): OGC's ap-validator 0.5.0 crashes on an optional array input.
    type: string[]
    label: STAC item URLs
    doc: http(s) URLs of STAC items (Sentinel-2 L2A with a `nir` asset) to use instead of searching the STAC API, with or without staged_items.
    default: []
  aoi:
    inputBinding: {prefix: -raoi, position: 6}
    type: [File, string]
    label: Area of interest
    doc: 'Area of interest in degrees of longitude/latitude (WGS 84) - a GeoJSON File with a Polygon or MultiPolygon, such as a glacier outline (staged into each step), or a string - "W,S,E,N" (e.g. 75.194,36.201,75.424,36.411), inline GeoJSON text, or the http(s) URL (or, in local runs without containers, the path) of a GeoJSON file. Discovery searches scenes intersecting it; each pair is read over its bounding box, and points outside the polygon are nodata in every product.'
  start_year:
    inputBinding: {prefix: -pstart_year, position: 6}
    type: int
    label: First season year
    doc: First year of the seasons to search (calendar year; for a season wrapping the year end, the year it starts).
  end_year:
    inputBinding: {prefix: -pend_year, position: 6}
    type: int
    label: Last season year
    doc: Last year of the seasons to search (inclusive).
  start_month:
    inputBinding: {prefix: -pstart_month, position: 6}
    type: int
    label: First month of the season
    doc: Month number 1-12; when larger than `end_month` the season wraps the year end (e.g. 11 to 2).
    default: 5
  end_month:
    inputBinding: {prefix: -pend_month, position: 6}
    type: int
    label: Last month of the season
    doc: Month number 1-12 (inclusive).
    default: 10
  max_cloud_cover:
    inputBinding: {prefix: -pmax_cloud_cover, position: 6}
    type: float
    label: Maximum cloud cover
    doc: Largest scene cloud cover accepted, percent (0-100), from `eo:cloud_cover`.
    default: 10.0
  pairs_per_image:
    inputBinding: {prefix: -ppairs_per_image, position: 6}
    type: int
    label: Pairs per image
    doc: Each selected scene is paired with the next N selected scenes (N >= 1).
    default: 2
  min_baseline_days:
    inputBinding: {prefix: -pmin_baseline_days, position: 6}
    type: float?
    label: Minimum baseline
    doc: Shortest time between the two scenes of a pair, days; no lower limit when empty.
  max_baseline_days:
    inputBinding: {prefix: -pmax_baseline_days, position: 6}
    type: float?
    label: Maximum baseline
    doc: Longest time between the two scenes of a pair, days; no upper limit when empty.
  tile:
    inputBinding: {prefix: -rtile, position: 6}
    type: string?
    label: MGRS tile
    doc: Use only scenes of this MGRS tile (e.g. 43SEA); by default the tile covering the area of interest best.
  aoi_cloud_cover:
    inputBinding: {prefix: -y, valueFrom: 'aoi_cloud_cover: $(self)', position: 6}
    type: boolean
    label: Cloud cover over the area of interest
    doc: Judge cloud cover over the area of interest from the scene classification (`scl`) asset instead of the whole tile, when the asset exists.
    default: false
  max_items:
    inputBinding: {prefix: -pmax_items, position: 6}
    type: int
    label: Most items fetched
    doc: Upper bound on the items fetched from the STAC API over all season years (a guard against a huge search).
    default: 5000
  max_pairs:
    inputBinding: {prefix: -pmax_pairs, position: 6}
    type: int
    label: Most pairs
    doc: Most pairs the discovery may give (each is a tracking job); more is refused before any pair is built.
    default: 2000

outputs:
  executed_notebook:
    type: File
    label: Executed discovery notebook
    doc: The discovery notebook with its outputs (scene and pair tables, timeline) and glued results.
    outputBinding:
      glob: discovery.ipynb
  pairs_json:
    type: File
    label: Pair list
    doc: The selected scenes' pairs as JSON (item ids and hrefs, datetimes, baseline in days, tile, cloud cover).
    outputBinding:
      glob: pairs.json
