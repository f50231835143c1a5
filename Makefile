# Build, lab and test targets. The lab's one implementation is lab/lab.sh.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO      ?= go
LAB     := lab/lab.sh
VM      ?= vm1
# The PostgreSQL image tag; `make image PG_TAG=15-2.0-b` builds a second tag
# that differs only by a label (rolling-upgrade tests need two image IDs).
PG_TAG  ?= 15-2.0
E2E_TIMEOUT ?= 80m


.PHONY: demo host-tools build images image lab-up lab-down lab-reset lab-status lab-ssh \
	lab-power-off lab-power-on lab-disconnect lab-reconnect lab-partition lab-heal lab-rekey lab-trust \
	test test-unit test-e2e baseline

build:
	$(GO) build ./...

images:
	PG_TAG=$(PG_TAG) $(LAB) images

image:
	PG_TAG=$(PG_TAG) $(LAB) image

lab-up:
	$(LAB) up

lab-down lab-reset:
	$(LAB) reset

lab-status:
	$(LAB) status

lab-ssh:
	$(LAB) ssh $(VM)

lab-power-off:
	$(LAB) power-off $(VM)

lab-power-on:
	$(LAB) power-on $(VM)

lab-disconnect:
	$(LAB) disconnect $(VM)

lab-reconnect:
	$(LAB) reconnect $(VM)

lab-partition:
	$(LAB) partition $(VM)

lab-heal:
	$(LAB) heal $(VM)

lab-rekey:
	$(LAB) rekey $(VM)

lab-trust:
	$(LAB) trust $(VM)

# The manual bring-up from the runbook, timed (the reconciler's baseline).
baseline: lab-up
	e2e/baseline.sh

test-unit: host-tools
	$(GO) test ./...

host-tools:
	$(LAB) host-tools

# The main job: build the lab, bring the reference cluster up with
# `reconciler apply`, then show `status` and `dsn`.
demo: lab-up
	$(GO) build -o bin/reconciler ./cmd/reconciler
	printf 'desired: desired.yaml\nssh:\n  private_keys: [id_ed25519]\n  known_hosts: [known_hosts]\n' > .lab/config.yaml
	bin/reconciler apply --config .lab/config.yaml
	bin/reconciler status --config .lab/config.yaml
	@echo
	@echo "Applications connect with:"
	@bin/reconciler dsn --config .lab/config.yaml

# TestLabReset tears the lab down and builds it again, so it runs alone,
# before the rest of the suite.
test-e2e: lab-up
	E2E_LAB_RESET=1 $(GO) test -tags e2e -count=1 -timeout 20m -run '^TestLabReset$$' ./e2e/
	$(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./e2e/

test: test-unit test-e2e
