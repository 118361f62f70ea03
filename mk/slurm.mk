# Toil on Slurm: a single-node cluster on this machine (deploy/slurm/single-node.sh, root) and
# the demo through toil-cwl-runner --batchSystem slurm. Included by the Makefile; uses its
# BIN, RUN and DEPLOY_STAMP (mk/deploy.mk, which must be included first).

.PHONY: slurm-up slurm-status slurm-down demo-slurm

slurm-up: ## install and start a single-node Slurm cluster here (Debian packages; as root, e.g. in CI)
	deploy/slurm/single-node.sh start

slurm-status: ## munge/slurmctld/slurmd and sinfo of the single-node cluster
	deploy/slurm/single-node.sh status

slurm-down: ## stop the single-node Slurm cluster's daemons
	deploy/slurm/single-node.sh stop

demo-slurm: $(DEPLOY_STAMP) ## the demo with every step a Slurm job (toil-cwl-runner --batchSystem slurm); needs a cluster (make slurm-up)
	@command -v sinfo >/dev/null && sinfo -h >/dev/null 2>&1 || \
	  { echo "no Slurm cluster answers (sinfo); start one here with 'make slurm-up' (root)"; exit 1; }
	$(RUN) $(BIN)/glacier-velocity demo --runner toil-slurm --dir build/demo-slurm
