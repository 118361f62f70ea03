cwlVersion: v1.2
class: CommandLineTool
id: stage-out
label: Stage the STAC catalog out to S3
doc: |
  Uploads the Workflow's output Directory (a self-contained STAC catalog: catalog.json at the
  top, relative links and asset hrefs) to s3://<s3_bucket>/<sub_path>/, every file under the
  same relative path, so that the catalog resolves in the bucket as it did on disk. Before
  uploading it checks that every item and asset the catalog names is inside the Directory;
  a catalog pointing outside it would arrive incomplete. Returns the S3 URI of catalog.json.
  Uploads go through boto3 (s3transfer): streamed from disk, files above 8 MiB in parts,
  each request with a 60 s timeout and three attempts. Temporary credentials take a session
  token; without keys, boto3 looks for a web identity (Kubernetes service account) or a role.

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
  EnvVarRequirement:
    envDef:
      AWS_ACCESS_KEY_ID: $(inputs.aws_access_key_id || "")
      AWS_SECRET_ACCESS_KEY: $(inputs.aws_secret_access_key || "")
      AWS_SESSION_TOKEN: $(inputs.aws_session_token || "")
      AWS_DEFAULT_REGION: $(inputs.region_name)

# glacier_velocity.deploy.s3upload: boto3 (the image's `s3` extra), in the application image.
baseCommand: [python, -m, glacier_velocity.deploy.s3upload]
arguments:
  - valueFrom: $(inputs.catalog.path)
    position: 1
  - valueFrom: $(inputs.s3_bucket)
    position: 2
  - valueFrom: $(inputs.sub_path)
    position: 3
  - valueFrom: $(inputs.endpoint_url)
    position: 4

inputs:
  catalog:
    type: Directory
    label: STAC catalog
    doc: The Workflow's output, a self-contained STAC catalog directory.
  s3_bucket:
    type: string
    label: S3 bucket
    doc: Bucket receiving the catalog.
  sub_path:
    type: string
    label: Key prefix
    doc: Prefix of every key in the bucket, e.g. the job id; catalog.json lands at <sub_path>/catalog.json.
  aws_access_key_id:
    type: string?
    label: AWS access key id
    doc: Access key of the object store; empty to use the pod's web identity or the machine's role.
  aws_secret_access_key:
    type: string?
    label: AWS secret access key
    doc: Secret key of the object store; empty with an empty access key.
  aws_session_token:
    type: string?
    label: AWS session token
    doc: Session token of temporary credentials (STS); empty for long-term keys.
  region_name:
    type: string
    label: Region
    doc: Region of the bucket, e.g. us-east-1.
    default: us-east-1
  endpoint_url:
    type: string
    label: S3 endpoint URL
    doc: Endpoint of an S3-compatible store (MinIO, Ceph, a local test server); empty for AWS itself.
    default: ""

outputs:
  s3_catalog_output:
    type: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
    label: STAC catalog in S3
    doc: s3:// URI of the staged catalog.json.
