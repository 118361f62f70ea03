cwlVersion: v1.2
class: CommandLineTool
id: file-stage-in
label: Stage a file in from an http(s) URL, or pass a string on
doc: |
  For the package's File-or-string inputs (aoi, glacier_outlines, points_of_interest): a URI
  (the record eoap-cwlwrap puts where the package has a File) is fetched over http(s) into a
  local file, which the package then receives as a File; a plain string (W,S,E,N, inline
  GeoJSON, "lon,lat; lon,lat" or a URL the step reads itself) is passed on unchanged, and
  nothing is fetched. Only http(s) is accepted; the request has a 60 s timeout and three
  attempts, and a file larger than 512 MB is refused.

# To run alone. In the wrapped package (wrap.py) this tool runs in the package's own versioned
# image, required as the package's tools require it.
hints:
  DockerRequirement:
    dockerPull: glacier-velocity:latest
requirements:
  InlineJavascriptRequirement: {}
  NetworkAccess:
    networkAccess: true
  ResourceRequirement:
    coresMin: 1
    coresMax: 1
    ramMin: 256
    ramMax: 1024
  SchemaDefRequirement:
    # The URI type eoap-cwlwrap recognises; wrap.py serves it from uri-schema.yaml (offline).
    types:
      - $import: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml
  InitialWorkDirRequirement:
    listing:
      - entryname: file_stage_in.py
        entry: |
          """Download one file over http(s) into ./staged (standard library only); no URL: nothing to do."""
          import sys
          import time
          import urllib.request
          from pathlib import Path, PurePosixPath
          from urllib.parse import urlparse

          LIMIT = 512 * 1024 * 1024

          def fetch(url, target):
              size = 0
              with urllib.request.urlopen(url, timeout=60) as answer, open(target, "wb") as out:
                  while chunk := answer.read(1 << 20):
                      size += len(chunk)
                      if size > LIMIT:
                          sys.exit(f"file-stage-in: {url} is larger than 512 MB; clip it to the area first")
                      out.write(chunk)
              return size

          url = sys.argv[1] if len(sys.argv) > 1 else ""
          if not url:
              print("file-stage-in: a string, passed on as it is", file=sys.stderr)
              sys.exit(0)
          if urlparse(url).scheme not in ("http", "https"):
              sys.exit(f"file-stage-in: {url!r} is not an http(s) URL")
          staged = Path("staged")
          staged.mkdir()
          target = staged / (PurePosixPath(urlparse(url).path).name or "input")
          for attempt in range(3):
              try:
                  size = fetch(url, target)
                  break
              except OSError as exc:
                  if attempt == 2:
                      sys.exit(f"file-stage-in: cannot fetch {url}: {exc}")
                  time.sleep(2 ** attempt)
          print(f"file-stage-in: {url} ({size} bytes)", file=sys.stderr)

# A string is passed on by the output's expression; the script then has nothing to fetch.
baseCommand: [python, file_stage_in.py]
arguments:
  - valueFrom: '$(typeof inputs.reference === "string" ? "" : inputs.reference.value)'
    position: 1

inputs:
  reference:
    type:
      - https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
      - string
    label: File URL or string
    doc: The http(s) URL of the file to stage in (a URI), or a string to pass on as it is.

outputs:
  staged:
    type: [File, string]
    label: Staged file or the string
    doc: The fetched file, or the input string unchanged.
    outputBinding:
      glob: staged/*
      outputEval: '$(typeof inputs.reference === "string" ? inputs.reference : self[0])'
