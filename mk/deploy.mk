# Deployment targets (container image, containerized demo, OGC application package, local
# OGC API - Processes). Included by the Makefile; uses its VENV, BIN, STAMP and RUN.

VERSION ?= $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n 1)
# Registry prefix of the image reference in the application package and of `make image`.
REGISTRY ?= localhost
IMAGE ?= $(REGISTRY)/glacier-velocity:$(VERSION)
# The image's digest in its registry (sha256:<64 hex>), once pushed: the package (and the stage
# tools of the wrapped package) then name IMAGE@IMAGE_DIGEST, which a runner pulls byte for byte.
# E.g. `podman push --digestfile d $(IMAGE)`, or `docker buildx imagetools inspect $(IMAGE)`.
IMAGE_DIGEST ?=
PACKAGE_IMAGE := $(IMAGE)$(if $(IMAGE_DIGEST),@$(IMAGE_DIGEST))
# The tag the CWL sources name in their DockerRequirement hint (cwl/*.cwl).
LOCAL_TAG ?= glacier-velocity:latest
# The image's source label and the package's s:codeRepository: project.urls.Repository.
CODE_REPOSITORY ?= $(shell sed -n 's/^Repository *= *"\(.*\)"/\1/p' pyproject.toml | head -n 1)
PACKAGE := dist/glacier-velocity.$(VERSION).cwl
OGC_PORT ?= 5000
# docker if it answers, else podman; the podman set-up of ../shared exports DOCKER_HOST so that
# the docker CLI and cwltool's docker mode reach podman's Docker-compatible API.
# podman's API socket (../shared/containers/setup-podman.sh) stands in for a Docker daemon.
ifeq ($(origin DOCKER_HOST),undefined)
ifneq ($(wildcard /run/podman/podman.sock),)
export DOCKER_HOST := unix:///run/podman/podman.sock
endif
endif
CONTAINER_ENGINE ?= $(shell if docker version >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null; then echo podman; else echo docker; fi)
DEPLOY_STAMP := $(VENV)/.installed-deploy
EOAP_VENV := $(VENV)/tools/eoap
# The ADES tools, each in a virtualenv of its own (command-line tools; their pins clash with the
# lock: ruamel.yaml, cwl-utils, python-dateutil). Exact versions: deploy/ades/wrap.py hooks
# schema-salad's fetcher, and ap-validator 0.5.0 imports PyYAML without declaring it.
CWLWRAP_VENV := $(VENV)/tools/cwlwrap
CWLWRAP_PINS := eoap-cwlwrap==0.31.0 cwl-loader==0.22.0 cwl-utils==0.41 schema-salad==8.10.20260825112551 ruamel.yaml==0.19.1
APVAL_VENV := $(VENV)/tools/apval
APVAL_PINS := ogc-ap-validator==0.5.0 PyYAML==6.0.4
MOTO_VENV := $(VENV)/tools/moto
MOTO_PINS := 'moto[server]==5.2.5' boto3==1.44.8 botocore==1.44.8
ADES_STAMP := $(VENV)/.installed-ades
WRAPPED := dist/glacier-velocity.$(VERSION).wrapped.cwl

.PHONY: image demo-container package package-validate package-wrap ogc-serve deploy-setup ades-setup

deploy-setup: $(DEPLOY_STAMP) ## install the deployment tools (pygeoapi, cwl2ogc, toil, validators)

# eoap-validator pins ruamel.yaml < 0.19, which the workflow's lock does not allow: it gets a
# virtualenv of its own (a command-line tool only, nothing imports it).
$(DEPLOY_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[workflow,test,deploy]'
	test -x $(EOAP_VENV)/bin/python || $(BIN)/python -m venv $(EOAP_VENV)
	$(EOAP_VENV)/bin/python -m pip install --quiet 'eoap-validator>=0.3.1,<0.4'
	touch $@

ades-setup: $(ADES_STAMP) ## install the ADES tools (eoap-cwlwrap, ap-validator, moto), pinned, in .venv/tools/

$(ADES_STAMP): $(STAMP) mk/deploy.mk
	test -x $(CWLWRAP_VENV)/bin/python || $(BIN)/python -m venv $(CWLWRAP_VENV)
	$(CWLWRAP_VENV)/bin/python -m pip install --quiet $(CWLWRAP_PINS)
	test -x $(APVAL_VENV)/bin/python || $(BIN)/python -m venv $(APVAL_VENV)
	$(APVAL_VENV)/bin/python -m pip install --quiet $(APVAL_PINS)
	test -x $(MOTO_VENV)/bin/python || $(BIN)/python -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/python -m pip install --quiet $(MOTO_PINS)
	touch $@

# mypy checks the deployment modules against their real dependencies, so lint needs them too.
test test-fast lint: $(DEPLOY_STAMP)
test: $(ADES_STAMP)

image: ## build the container image $(REGISTRY)/glacier-velocity:$(VERSION) (docker or podman)
	$(CONTAINER_ENGINE) build -f docker/Dockerfile --build-arg VERSION=$(VERSION) --build-arg SOURCE=$(CODE_REPOSITORY) \
	  -t $(IMAGE) -t $(LOCAL_TAG) .
	@$(CONTAINER_ENGINE) image inspect $(IMAGE) --format 'image $(IMAGE): {{.Size}} bytes'

demo-container: $(DEPLOY_STAMP) image ## the demo with every step in the container (cwltool docker mode)
	$(RUN) $(BIN)/glacier-velocity demo-container --dir build/demo-container --image $(LOCAL_TAG)

package: $(DEPLOY_STAMP) ## write the OGC application package dist/glacier-velocity.<version>.cwl (image $(IMAGE), @IMAGE_DIGEST when given)
	$(RUN) $(BIN)/glacier-velocity package --image $(PACKAGE_IMAGE) --code-repository $(CODE_REPOSITORY) --output $(PACKAGE) --ogc deploy/ogc --calrissian deploy/calrissian

package-validate: package ## validate the package: cwltool --validate and eoap-validator (package, staging, metadata profiles)
	$(RUN) $(BIN)/cwltool --quiet --validate $(PACKAGE)
	$(EOAP_VENV)/bin/eoap-validator --profile eoap-package --profile eoap-staging --profile metadata \
	  --staging deploy/ogc/eoap-staging.json $(PACKAGE)#glacier-velocity

package-wrap: package $(ADES_STAMP) ## wrap the package for an ADES (stage-in/out from deploy/ades/, in the package's image, offline): $(WRAPPED)
	mkdir -p build
	$(CWLWRAP_VENV)/bin/python deploy/ades/wrap.py --workflow $(PACKAGE)#glacier-velocity \
	  --directory-stage-in deploy/ades/stage-in.cwl --file-stage-in deploy/ades/file-stage-in.cwl \
	  --directory-stage-out deploy/ades/stage-out.cwl --output $(WRAPPED) 2>build/package-wrap.log \
	  || { tail -n 30 build/package-wrap.log; exit 1; }
	$(RUN) $(BIN)/cwltool --quiet --validate $(WRAPPED)

ogc-serve: package ## OGC API - Processes (pygeoapi) on 127.0.0.1:$(OGC_PORT) running the package in containers; OGC_KEYS=FILE for API keys, else --insecure-local
	$(RUN) $(BIN)/glacier-velocity ogc-serve --config deploy/ogc/pygeoapi-config.yml --port $(OGC_PORT) \
	  $(if $(OGC_KEYS),--keys-file $(OGC_KEYS),--insecure-local)
