cwlVersion: v1.2
class: CommandLineTool
id: stage-in
label: Stage a STAC item in from an http(s) URL
doc: |
  Fetches a STAC item (or a catalog's item) from an http(s) URL and the files of its assets
  into a Directory: the item as item.json beside its asset files, every asset href rewritten
  to the local file name, so that a tool given the Directory reads a self-contained item.
  Only http(s) is accepted; each request has a 60 s timeout and three attempts.

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
      - entryname: stage_in.py
        entry: |
          """Download a STAC item and its assets over http(s) into ./staged (standard library only)."""
          import json
          import shutil
          import sys
          import time
          import urllib.request
          from pathlib import Path, PurePosixPath
          from urllib.parse import urljoin, urlparse

          def fetch(url, target):
              if urlparse(url).scheme not in ("http", "https"):
                  sys.exit(f"stage-in: {url!r} is not an http(s) URL")
              for attempt in range(3):
                  try:
                      with urllib.request.urlopen(url, timeout=60) as answer, open(target, "wb") as out:
                          shutil.copyfileobj(answer, out)
                      return target
                  except OSError as exc:
                      if attempt == 2:
                          sys.exit(f"stage-in: cannot fetch {url}: {exc}")
                      time.sleep(2 ** attempt)

          url = sys.argv[1]
          staged = Path("staged")
          staged.mkdir()
          item = json.loads(fetch(url, staged / "item.json").read_text(encoding="utf-8"))
          if item.get("type") != "Feature":
              sys.exit(f"stage-in: {url} is not a STAC item (type {item.get('type')!r})")
          names = set()
          for key, asset in item.get("assets", {}).items():
              href = urljoin(url, asset["href"])
              name = PurePosixPath(urlparse(href).path).name or key
              if name in names or name == "item.json":
                  name = f"{key}-{name}"
              names.add(name)
              fetch(href, staged / name)
              asset["href"] = f"./{name}"
          item["links"] = [link for link in item.get("links", []) if link.get("rel") not in ("self", "root", "parent", "collection")]
          (staged / "item.json").write_text(json.dumps(item, indent=2), encoding="utf-8")
          print(f"stage-in: {url} with {len(names)} asset(s)", file=sys.stderr)

baseCommand: [python, stage_in.py]
arguments:
  - valueFrom: $(inputs.reference.value)
    position: 1

inputs:
  reference:
    type: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
    label: STAC item URL
    doc: http(s) URL of the STAC item to stage in.

outputs:
  staged:
    type: Directory
    label: Staged item
    doc: item.json and its asset files, with relative asset hrefs.
    outputBinding:
      glob: staged
