cwlVersion: v1.2
class: CommandLineTool
id: stage-in-file
label: Stage a file in from an http(s) URL
doc: |
  Downloads one file (e.g. a GeoJSON area of interest) from an http(s) URL, keeping the last
  path segment as its name. Only http(s) is accepted; the request has a 60 s timeout and three
  attempts.

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
    ramMax: 512
  SchemaDefRequirement:
    # The URI type eoap-cwlwrap recognises; wrap.py serves it from uri-schema.yaml (offline).
    types:
      - $import: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml
  InitialWorkDirRequirement:
    listing:
      - entryname: stage_in_file.py
        entry: |
          """Download one file over http(s) into ./staged/ (standard library only)."""
          import shutil
          import sys
          import time
          import urllib.request
          from pathlib import Path, PurePosixPath
          from urllib.parse import urlparse

          url = sys.argv[1]
          if urlparse(url).scheme not in ("http", "https"):
              sys.exit(f"stage-in: {url!r} is not an http(s) URL")
          target = Path("staged") / (PurePosixPath(urlparse(url).path).name or "download")
          target.parent.mkdir()
          for attempt in range(3):
              try:
                  with urllib.request.urlopen(url, timeout=60) as answer, open(target, "wb") as out:
                      shutil.copyfileobj(answer, out)
                  break
              except OSError as exc:
                  if attempt == 2:
                      sys.exit(f"stage-in: cannot fetch {url}: {exc}")
                  time.sleep(2 ** attempt)
          print(f"stage-in: {url} -> {target}", file=sys.stderr)

baseCommand: [python, stage_in_file.py]
arguments:
  - valueFrom: $(inputs.reference.value)
    position: 1

inputs:
  reference:
    type: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
    label: File URL
    doc: http(s) URL of the file to stage in.

outputs:
  staged:
    type: File
    label: Staged file
    doc: The downloaded file.
    outputBinding:
      glob: staged/*
