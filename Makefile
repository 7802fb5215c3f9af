# The two commands a new machine needs: `make demo` and `make test`. `make soak` runs the
# long full-scale tests `make test` leaves out; CI (.ci/run) runs test, soak, image-check.
# uv comes from PyPI when missing; everything else comes from uv.lock: the Pulumi program's
# dependencies and every group (tooling, app, dev) and workspace member.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen
# Phase 3 needs a database class with room for both fleets' pools: PHASE=3 uses staging's.
STACK ?= $(if $(filter 3,$(PHASE)),staging,dev)
# Empty: the phase the stack file says (`cold-reach:phase`). PHASE=2 deploys another.
PHASE ?=
# PROMOTE=1: deploy PHASE (or the stack file's), then rehearse the promotion to the next one.
PROMOTE ?=
# Where a rehearsal starts: PHASE with PROMOTE=1; PHASE=3 alone walks 2 -> 3.
REHEARSE_FROM = $(if $(PROMOTE),$(PHASE),$(if $(filter 3,$(PHASE)),2))
DEMO_DIR ?= var/demo

.PHONY: setup demo test lint typecheck unit soak bench image-check

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --all-packages --all-groups --compile-bytecode --quiet

# The stack deployed into an embedded moto server, then checked by `coldreach verify`
# through the emulator's endpoint, at the stack file's phase unless PHASE is given.
# `make demo PROMOTE=1` rehearses the promotion to the next phase instead: deploy, update,
# then verify, including that every stateful resource kept its id and data (--kept).
# `make demo PHASE=3` walks the stages of 2 -> 3 that way (docs/promotion-3.md) and says
# which it could not rehearse; `uv run coldreach local up --stack dev --phase 3` deploys
# phase 3 fresh.
# The server stops when the demo ends; `uv run coldreach local up --stack dev --serve`
# keeps one running.
demo: setup
	@set -euo pipefail; \
	out=$(DEMO_DIR)/outputs-$(STACK).json; base=$(DEMO_DIR)/baseline-$(STACK).json; \
	mkdir -p $(DEMO_DIR); rm -f $$out $$base; \
	port=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	if [ -n "$(PROMOTE)" ] || [ "$(PHASE)" = 3 ]; then \
	  deploy="local rehearse --stack $(STACK) $(if $(REHEARSE_FROM),--from $(REHEARSE_FROM)) --baseline $$base"; \
	  kept="--kept $$base"; \
	else \
	  deploy="local up --stack $(STACK) $(if $(PHASE),--phase $(PHASE))"; kept=""; \
	fi; \
	$(RUN) coldreach $$deploy --port $$port --outputs $$out --serve & \
	pid=$$!; trap 'kill -TERM $$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true' EXIT; \
	for _ in $$(seq 1200); do [ -f $$out ] && break; kill -0 $$pid 2>/dev/null || exit 1; sleep 0.1; done; \
	[ -f $$out ] || { echo "coldreach $$deploy did not finish in 120 s" >&2; exit 1; }; \
	echo; echo "$$ uv run coldreach verify --outputs $$out --endpoint-url http://127.0.0.1:$$port $$kept"; \
	$(RUN) coldreach verify --outputs $$out --endpoint-url http://127.0.0.1:$$port $$kept

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports
	$(RUN) pyright
	$(RUN) zizmor --offline --quiet .

typecheck: setup
	$(RUN) pyright

# Every test but the soak ones (pyproject.toml's addopts has `-m 'not soak'`): a few
# minutes on 2 cores.
unit: setup
	$(RUN) pytest

# The lint (pyright alone takes a minute or more) and the tests at once, on two cores;
# each prints its output when it is done.
test: setup
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint unit

# The soak tests (marker `soak`): the same behaviour as tests in `make test`, at full scale
# or over a long walk (100,000 clients migrated onto shards and killed twice, 10,000
# messages through two Kafka fleets with a killed member, every black-box app test against
# the phase-3 edge, the 2 -> 3 promotion walked stage by stage). Minutes each; CI runs
# them after `make test`.
soak: setup
	$(RUN) pytest -m soak

# app/Dockerfile built once, then run as the staging plan runs it
# (tests/image/image_check.py). Phase 2, as ECS on Fargate: uid 10001, read-only root,
# an empty root-owned /tmp volume, each task definition against the local PostgreSQL
# and Redis. Phase 3, as EKS: each app Deployment with its own args, user, emptyDir and
# environment (AWS values made local: PostgreSQL shards and directory, a mock Kafka
# cluster, the console mailer), its probes, then one email sent end to end through the
# edge. Without a Docker engine it builds with buildah on a Debian base made by
# mmdebstrap, installed here.
image-check: setup
	@docker info >/dev/null 2>&1 || { command -v buildah && command -v mmdebstrap; } >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap; }
	$(RUN) python tests/image/image_check.py --stack staging --phase 2 --phase 3

# Offline plan wall time per stack (target: median <= 5 s).
bench: setup
	$(RUN) python benchmarks/plan_wall_time.py --stack dev
	$(RUN) python benchmarks/plan_wall_time.py --stack staging
	$(RUN) python benchmarks/plan_wall_time.py --stack staging --phase 3

.PHONY: app bench-app proto proto-lint

# The Python code of app/proto/*.proto, regenerated into app/src/openapi_server/rpc/gen
# (committed; tests/app/test_app_proto.py fails when it drifts from the protos).
proto: setup
	$(RUN) python app/proto/generate.py

# buf lint (STANDARD rules), buf pinned in app/proto/package.json and its lock file.
proto-lint:
	cd app/proto && npm ci --no-audit --no-fund --silent && ./node_modules/.bin/buf lint

# The app on its embedded defaults: SQLite under ./var, the in-process worker,
# the console mailer (outbox in ./var/outbox.jsonl). http://127.0.0.1:8000/docs
# `make app PHASE=3`: the Client and Campaign gRPC services as local processes behind
# the same HTTP API, two SQLite shards (or DB_SHARD_n), Kafka's mock cluster and a
# sender (coldreach-app serve-phase3); `PHASE=3 coldreach-app create-key` mints keys.
app: setup
ifeq ($(PHASE),3)
	PHASE=3 DATA_DIR=$${DATA_DIR:-./var} PORT=$${PORT:-8000} $(RUN) coldreach-app serve-phase3
else
	DATA_DIR=$${DATA_DIR:-./var} $(RUN) uvicorn openapi_server.main:app --host 127.0.0.1 --port $${PORT:-8000}
endif

# App benchmarks on this machine's PostgreSQL and Redis; figures go in app/README.md.
bench-app: setup
	$(RUN) python benchmarks/app_api.py
	$(RUN) python benchmarks/app_pipeline.py
	$(RUN) python benchmarks/app_celery_10k.py
	$(RUN) python benchmarks/app_kafka_delivery.py
