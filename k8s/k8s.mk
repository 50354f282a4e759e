# k8s/k8s.mk — container image of the sidecar (included by ../Makefile).
#   make image [IMAGE=registry/litebrain-proxy:tag]
# The default tag is the one the Deployment in k8s/manifests/ollama-scaling-k8s.yaml runs,
# so building and deploying agree.  Needs docker or podman with a reachable engine.

K8S_MANIFEST := k8s/manifests/ollama-scaling-k8s.yaml
IMAGE ?= $(shell sed -n 's/^ *image: *\(litebrain-proxy:[^ ]*\).*/\1/p' $(K8S_MANIFEST) | head -n 1)
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

.PHONY: image
image:
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
	    echo "make image: no container engine: install docker or podman (or set CONTAINER_ENGINE)" >&2; exit 1; fi
	@if ! $(CONTAINER_ENGINE) info >/dev/null 2>&1; then \
	    echo "make image: $(CONTAINER_ENGINE) is installed but its engine is not reachable ($(CONTAINER_ENGINE) info fails); start the daemon or use another machine" >&2; exit 1; fi
	$(CONTAINER_ENGINE) build -f k8s/Dockerfile -t $(IMAGE) .
	@echo "built $(IMAGE); push it where your cluster pulls from and set the Deployment's image"
