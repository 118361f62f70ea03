cwlVersion: v1.2
class: CommandLineTool
id: extract_pairs
label: Read the pair list from the executed discovery notebook
doc: |
  Reads the pair list glued (scrapbook) by the executed discovery notebook and returns it as a
  CWL array of records, one per image pair, for the Workflow to scatter the correlation over.
  An empty list is a valid answer (no scenes or no pairs passed the filters); the reason is
  printed on stderr and returned as `message`.

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
    ramMax: 512

baseCommand: [glacier-velocity, extract-pairs]

inputs:
  notebook:
    type: File
    label: Executed discovery notebook
    doc: Output notebook of the discovery tool, holding the glued `pairs` list.
    inputBinding:
      position: 1

outputs:
  pairs:
    type:
      type: array
      items:
        type: record
        name: pair
        fields:
          id:
            type: string
            doc: Pair id from tile and dates, e.g. 43SEA_20200601_20200721 (safe as a file name).
          reference_id:
            type: string
            doc: STAC item id of the reference (earlier) scene.
          reference_href:
            type: string
            doc: URL (or path) of the reference scene's STAC item.
          reference_datetime:
            type: string
            doc: Acquisition time of the reference scene, ISO 8601, UTC.
          secondary_id:
            type: string
            doc: STAC item id of the secondary (later) scene.
          secondary_href:
            type: string
            doc: URL (or path) of the secondary scene's STAC item.
          secondary_datetime:
            type: string
            doc: Acquisition time of the secondary scene, ISO 8601, UTC.
          dt_days:
            type: double
            doc: Baseline from reference to secondary, days (fractional).
    label: Image pairs
    doc: One record per pair, in time order of the reference scene; empty when discovery found no pairs.
  message:
    type: string
    label: Discovery message
    doc: How many pairs were found, or which filter removed the scenes when there are none.
