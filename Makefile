# expserver-go — build, run and test the stages.
#
#   make stage-N run      build bin/stage-N and run it in the foreground (N = 6…17)
#   make stage-N test     that stage's unit tests and milestones
#   make stage-N diff     what changed since stage N-1
#   make stage-N build    build bin/stage-N
#   make build            build every stage
#   make test             everything: vet, unit tests, snapshot checks, every stage's milestones
#   make test-long        the milestones with the official grader's full sizes (4 GiB floods, 30 s windows)
#   make check            gofmt, go vet, staticcheck
#   make upstream         a python-http.server-like upstream on :3000 serving stages/public
#   make grade STAGE=N BIN=path   grade any binary for stage N, as the course's grader would
#   make bench            stage 17 beside nginx and net/http, pinned to one CPU (~15 min; BENCHFLAGS=-quick for a smoke run)

SHELL := bash
GO ?= go
export CGO_ENABLED := 0
STATICCHECK_VERSION := 2026.2.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

# `make stage-N <action>`: the stage goal picks the stage, the action says what to do.
STAGE_GOAL := $(firstword $(filter stage-%,$(MAKECMDGOALS)))
N := $(patsubst stage-%,%,$(STAGE_GOAL))
DIR := $(if $(N),$(firstword $(wildcard stages/$(shell printf '%02d' '$(N)' 2>/dev/null)-*)))
ALL_STAGES := $(patsubst stages/%,%,$(wildcard stages/[0-9][0-9]-*))
ALL_NUMBERS := $(foreach d,$(ALL_STAGES),$(shell echo $$((10#$(firstword $(subst -, ,$(d)))))))

.PHONY: build test test-long check run diff upstream grade bench clean stage-%

stage-%:
	@if [ -z "$(DIR)" ]; then echo "make: no stage $* (stages are 6…17; see docs/roadmap.md)" >&2; exit 2; fi
	@if [ "$(words $(MAKECMDGOALS))" = 1 ]; then $(MAKE) --no-print-directory bin/stage-$*; fi

bin/stage-%: FORCE
	@mkdir -p bin
	$(GO) build -o $@ ./$(firstword $(wildcard stages/$(shell printf '%02d' '$*')-*))

FORCE:

ifneq ($(N),)
build: bin/stage-$(N)

run: bin/stage-$(N)
	@echo "stage $(N) running from $(DIR); Ctrl-C stops it"
	cd $(DIR) && ../../bin/stage-$(N) $(if $(wildcard $(DIR)/xps_config.json),xps_config.json) $(ARGS)

test:
	$(GO) test -count=1 ./$(DIR)/
	$(GO) test -count=1 -timeout 10m ./tests/ -run 'TestStage/^stage-$(N)$$' -v | grep -E '^\s*(---|ok|FAIL|PASS)|\.go:[0-9]+:'; exit $${PIPESTATUS[0]}

diff:
	$(GO) run ./tools/stagediff $(N)
else
build: $(foreach n,$(ALL_NUMBERS),bin/stage-$(n))

test:
	$(GO) vet ./...
	$(GO) run ./tools/stagediff -check
	$(GO) test -count=1 -timeout 15m -parallel 4 ./...

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

grade:
	@if [ -z "$(STAGE)" ] || [ -z "$(BIN)" ]; then echo "usage: make grade STAGE=N BIN=path/to/binary [GRADEFLAGS='-long -json r.json']" >&2; exit 2; fi
	@$(GO) build -o bin/grade ./tools/grade
	bin/grade -stage $(STAGE) -bin $(BIN) $(GRADEFLAGS)

bench:
	$(GO) run ./tools/bench $(BENCHFLAGS)

clean:
	rm -rf bin
