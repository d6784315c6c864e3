# expserver-go — build, run and test the stages.
#
#   make stage-N run      build bin/stage-N and run it in the foreground (N = 6…23);
#                         ARGS='-ports 9001' passes flags, ARGS=my.json runs 16–21 with that config
#   make stage-N test     that stage's unit tests and milestones
#   make stage-N diff     what changed since stage N-1
#   make stage-N build    build bin/stage-N
#   make build            build every stage
#   make test             everything: vet, unit tests, snapshot checks, every stage's milestones,
#                         with a line per package and per stage as each finishes
#   make test-long        the milestones with the official grader's full sizes (4 GiB floods, 30 s windows)
#   make check            gofmt, go vet, staticcheck
#   make upstream         a python-http.server-like upstream on :3000 serving stages/public
#   make grader           build bin/grade, the standalone grading tool (copy it anywhere; see docs/grading.md)
#   make grade STAGE=N BIN=path   grade any binary for stage N, as the course's grader would
#   make bench            the last stage beside nginx and net/http, each pinned to its CPUs (~40 min; BENCHFLAGS='-rounds 3 -row-rounds i=6,iii=6 -idle 10s' ~22 min, BENCHFLAGS=-quick a smoke run)

SHELL := bash
GO ?= go
export CGO_ENABLED := 0
# staticcheck 2026.2.2, named by its module version: the module proxy serves only that form.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

# `make stage-N <action>`: the stage goal picks the stage, the action says what to do.
STAGE_GOAL := $(firstword $(filter stage-%,$(MAKECMDGOALS)))
N := $(patsubst stage-%,%,$(STAGE_GOAL))
DIR := $(if $(N),$(firstword $(wildcard stages/$(shell printf '%02d' '$(N)' 2>/dev/null)-*)))
ALL_STAGES := $(patsubst stages/%,%,$(wildcard stages/[0-9][0-9]-*))
ALL_NUMBERS := $(foreach d,$(ALL_STAGES),$(shell echo $$((10#$(firstword $(subst -, ,$(d)))))))

.PHONY: build test test-long check run diff upstream grader grade bench clean stage-%

stage-%:
	@if [ -z "$(DIR)" ]; then echo "make: no stage $* (stages are 6…23; see docs/roadmap.md)" >&2; exit 2; fi
	@if [ "$(words $(MAKECMDGOALS))" = 1 ]; then $(MAKE) --no-print-directory bin/stage-$*; fi

bin/stage-%: FORCE
	@mkdir -p bin
	$(GO) build -o $@ ./$(firstword $(wildcard stages/$(shell printf '%02d' '$*')-*))

bin/testprogress: FORCE
	@mkdir -p bin
	@$(GO) build -o $@ ./tools/testprogress

FORCE:

ifneq ($(N),)
build: bin/stage-$(N)

# ARGS go first, so flags precede the config path. A .json file in ARGS is
# the config to run with, in place of the stage's sample, and is taken
# relative to where make runs, not to the stage folder the server runs in.
run: bin/stage-$(N)
	@echo "stage $(N) running from $(DIR); Ctrl-C stops it"
	cd $(DIR) && ../../bin/stage-$(N) $(foreach a,$(ARGS),$(if $(filter %.json,$(a)),$(abspath $(a)),$(a))) $(if $(filter %.json,$(ARGS)),,$(if $(wildcard $(DIR)/xps_config.json),xps_config.json))

test:
	$(GO) test -count=1 ./$(DIR)/
	$(GO) test -count=1 -timeout 10m ./tests/ -run 'TestStage/^stage-$(N)$$' -v | grep -E '^\s*(---|ok|FAIL|PASS)|\.go:[0-9]+:'; exit $${PIPESTATUS[0]}

diff:
	$(GO) run ./tools/stagediff $(N)
else
build: $(foreach n,$(ALL_NUMBERS),bin/stage-$(n))

# go test -v holds each package's output until the package ends, and the
# milestone suite is one package that runs for minutes; -json streams, and
# testprogress prints a line per package and per stage as each finishes, and
# every failure in full. pipefail keeps go test's exit status.
test: bin/testprogress
	$(GO) vet ./...
	$(GO) run ./tools/stagediff -check
	set -o pipefail; $(GO) test -json -count=1 -timeout 15m -parallel 4 ./... | bin/testprogress -progress '^TestStage/[^/]+$$'

test-long:
	XPS_LONG=1 $(GO) test -count=1 -timeout 60m -parallel 2 ./tests/ -v -run TestStage
endif

check: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

upstream:
	$(GO) run ./tools/upstream -port 3000 -d stages/public

# A static binary that carries the fixtures and the upstream: it runs from any
# folder, on a machine without Go. -buildvcs=auto overrides a GOFLAGS that
# turns stamping off, so -version names the commit.
grader:
	@mkdir -p bin
	$(GO) build -buildvcs=auto -o bin/grade ./tools/grade
	@bin/grade -version

# make can only exit 0 or 2, so it names the tool's own status (1 a case
# failed, 3 the server never came up) before it fails; scripts that need
# the status run bin/grade itself.
grade:
	@if [ -z "$(STAGE)" ] || [ -z "$(BIN)" ]; then echo "usage: make grade STAGE=N BIN=path/to/binary [GRADEFLAGS='-long -json r.json']" >&2; exit 2; fi
	@$(MAKE) --no-print-directory grader >/dev/null
	@bin/grade -stage $(STAGE) -bin $(BIN) $(GRADEFLAGS); status=$$?; \
	case $$status in \
	0) ;; \
	1) echo "grade exited 1: a case failed" >&2 ;; \
	3) echo "grade exited 3: the server never came up" >&2 ;; \
	*) echo "grade exited $$status" >&2 ;; \
	esac; exit $$status

bench:
	$(GO) run ./tools/bench $(BENCHFLAGS)

clean:
	rm -rf bin
