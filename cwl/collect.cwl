cwlVersion: v1.2
class: CommandLineTool
id: collect
label: One STAC catalog with every output of the run
doc: |
  Copies the aggregation step's STAC catalog (pair products, summary COGs and figures, run
  report) and adds an item `run-provenance` whose assets are the executed notebooks
  (discovery, one per pair attempted, aggregation), the pair list and the pair statuses. The
  result is the Workflow's only output: a self-contained catalog (relative links) that an
  ADES stages out as one Directory.

hints:
  DockerRequirement:
    dockerPull: glacier-velocity:latest
requirements:
  NetworkAccess:
    networkAccess: false
  ResourceRequirement:
    coresMin: 1
    coresMax: 1
    ramMin: 256
    ramMax: 1024

baseCommand: [glacier-velocity, collect]
arguments:
  - valueFrom: catalog
    prefix: --out

inputs:
  aggregation_catalog:
    type: Directory
    label: Aggregation catalog
    doc: The STAC catalog written by the aggregation tool (catalog.json at its top).
    inputBinding:
      prefix: --catalog
  notebooks:
    type: File[]
    label: Executed notebooks
    doc: Discovery, correlation (one per pair) and aggregation notebooks, added as assets of the provenance item.
    inputBinding:
      prefix: --notebook
  records:
    type: File[]
    label: Run records
    doc: Pair list (pairs.json) and pair statuses (status_<pair_id>.json), added as assets of the provenance item.
    default: []
    inputBinding:
      prefix: --metadata

outputs:
  catalog:
    type: Directory
    label: STAC catalog
    doc: Self-contained STAC catalog (catalog.json, relative links) of the pair products, the summary and its figures, the run report and the provenance item.
    outputBinding:
      glob: catalog
