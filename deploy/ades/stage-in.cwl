cwlVersion: v1.2
class: CommandLineTool
id: stage-in
label: Stage STAC items in from an http(s) URL
doc: |
  Fetches STAC items and the files of the assets the workflow reads (nir, scl) over http(s)
  into a Directory holding a self-contained STAC catalog, as the OGC Best Practice for EO
  Application Packages has it: catalog.json at the top, linking each item
  (<id>/<id>.json), whose staged assets are files beside it under relative hrefs (its other
  assets keep their absolute URLs). The URL may name one item, a catalog or collection (its
  item links, and its child catalogs' down to 4 levels), or an ItemCollection (a search's or
  a file's FeatureCollection). Only http(s) is accepted; each request has a 60 s timeout and
  three attempts; at most 1000 items.

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
          """Stage STAC items and their nir/scl assets over http(s) into ./staged (standard library only)."""
          import json
          import re
          import shutil
          import sys
          import time
          import urllib.request
          from pathlib import Path, PurePosixPath
          from urllib.parse import urljoin, urlparse

          STAGED_ASSETS = ("nir", "scl")
          MAX_ITEMS = 1000
          MAX_DEPTH = 4

          def fetch(url, target=None):
              if urlparse(url).scheme not in ("http", "https"):
                  sys.exit(f"stage-in: {url!r} is not an http(s) URL")
              for attempt in range(3):
                  try:
                      with urllib.request.urlopen(url, timeout=60) as answer:
                          if target is None:
                              return answer.read()
                          with open(target, "wb") as out:
                              shutil.copyfileobj(answer, out, 1 << 20)
                          return target
                  except OSError as exc:
                      if attempt == 2:
                          sys.exit(f"stage-in: cannot fetch {url}: {exc}")
                      time.sleep(2 ** attempt)

          def load(url):
              try:
                  return json.loads(fetch(url))
              except ValueError:
                  sys.exit(f"stage-in: {url} is not JSON; give the URL of a STAC item, catalog or ItemCollection")

          def self_href(document, base):
              for link in document.get("links", []):
                  if link.get("rel") == "self" and link.get("href"):
                      return urljoin(base, link["href"])
              return base

          def items_of(url, document, depth=0):
              """(where the item is, for its relative hrefs; the item) of every item under url."""
              kind = document.get("type")
              if kind == "Feature":
                  yield url, document
              elif kind == "FeatureCollection":
                  for feature in document.get("features", []):
                      yield self_href(feature, url), feature
              elif kind in ("Catalog", "Collection") and depth <= MAX_DEPTH:
                  for link in document.get("links", []):
                      target = urljoin(url, link.get("href", ""))
                      if link.get("rel") == "item":
                          yield target, load(target)
                      elif link.get("rel") == "child":
                          yield from items_of(target, load(target), depth + 1)
              else:
                  sys.exit(f"stage-in: {url} is a {kind!r}, not a STAC item, catalog or ItemCollection")

          url = sys.argv[1]
          staged = Path("staged")
          staged.mkdir()
          links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
          folders = set()
          for base, item in items_of(url, load(url)):
              if len(folders) == MAX_ITEMS:
                  sys.exit(f"stage-in: {url} holds more than {MAX_ITEMS} items; narrow the search")
              name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(item.get("id", "item")))[:100] or "item"
              while name in folders:
                  name += "_"
              folders.add(name)
              folder = staged / name
              folder.mkdir()
              files = {f"{name}.json"}
              for key, asset in item.get("assets", {}).items():
                  href = urljoin(base, asset["href"])
                  if key not in STAGED_ASSETS:
                      asset["href"] = href
                      continue
                  file = PurePosixPath(urlparse(href).path).name or key
                  if file in files:
                      file = f"{key}-{file}"
                  files.add(file)
                  fetch(href, folder / file)
                  asset["href"] = f"./{file}"
              item["links"] = [link for link in item.get("links", []) if link.get("rel") not in ("self", "root", "parent", "collection")]
              item["links"] += [{"rel": "root", "href": "../catalog.json"}, {"rel": "parent", "href": "../catalog.json"}]
              (folder / f"{name}.json").write_text(json.dumps(item, indent=2), encoding="utf-8")
              links.append({"rel": "item", "href": f"./{name}/{name}.json", "type": "application/geo+json"})
          if len(links) == 1:
              sys.exit(f"stage-in: {url} holds no STAC item")
          catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "staged", "description": f"Staged from {url}", "links": links}
          (staged / "catalog.json").write_text(json.dumps(catalog, indent=2), encoding="utf-8")
          print(f"stage-in: {len(folders)} item(s) from {url}", file=sys.stderr)

baseCommand: [python, stage_in.py]
arguments:
  - valueFrom: $(inputs.reference.value)
    position: 1

inputs:
  reference:
    type: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
    label: STAC items URL
    doc: http(s) URL of a STAC item, a catalog or collection, or an ItemCollection, to stage in.

outputs:
  staged:
    type: Directory
    label: Staged items
    doc: A self-contained STAC catalog - catalog.json, each item in a folder of its own with its staged nir and scl asset files under relative hrefs.
    outputBinding:
      glob: staged
