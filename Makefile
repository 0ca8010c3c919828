# Regent. `make demo` runs the three-region story; `make test` passes the tests.
GO        ?= go
TAGS      := hashicorpmetrics
GOFLAGS   := -tags=$(TAGS)
BIN       := bin
PKGS      := ./...
FUZZTIME  ?= 15s
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
export GOFLAGS

.PHONY: all deps build test test-short vet lint fuzz bench demo demo-up demo-down conformance proto clean chaos-sim

all: build

deps:
	@scripts/deps.sh

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)

# The test command of README.md and .ci/run.
# REGENT_COMETBFT_TEST=1 includes the real CometBFT chain tests (the node
# binary is built once from the Go module proxy into the Go build cache).
test: deps vet build
	REGENT_COMETBFT_TEST=1 $(GO) test -race -count=1 -timeout 25m $(PKGS)
	$(BIN)/regent slashing conformance slashing/conformance/testdata

test-short: vet
	$(GO) test -short $(PKGS)

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Benchmarks; compare runs with benchstat (go run golang.org/x/perf/cmd/benchstat@latest old.txt new.txt).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(PKGS) | tee bench.txt

# Long deterministic simulation of the handover/DR protocol (make test runs a
# short one): SEEDS schedules of STEPS steps, invariants checked after each.
SEEDS ?= 20
STEPS ?= 300
chaos-sim:
	$(GO) test -count=1 -timeout 0 ./chaos/sim/ -run 'TestSimulation$$' -sim.seeds=$(SEEDS) -sim.steps=$(STEPS) -v

conformance: build
	$(BIN)/regent slashing conformance slashing/conformance/testdata

demo: deps build
	$(BIN)/regent-demo --bin $(BIN) --dir $${DEMO_DIR:-$$(mktemp -d /tmp/regent-demo.XXXXXX)}

# The demo story, then the cluster keeps running for regentctl; demo-down stops it.
demo-up: deps build
	@d=$${DEMO_DIR:-$$(mktemp -d /tmp/regent-demo.XXXXXX)}; echo $$d > /tmp/regent-demo.last; \
	  $(BIN)/regent-demo --bin $(BIN) --dir $$d --keep

demo-down:
	@test -f /tmp/regent-demo.last && $(BIN)/regent-demo --stop $$(cat /tmp/regent-demo.last) || echo "no demo cluster recorded in /tmp/regent-demo.last"

proto:
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc --go_out=. --go_opt=module=github.com/regent-signer/regent \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/regent-signer/regent -I . \
	  raft/commandpb/*.proto leader/nodepb/*.proto failover/failoverpb/*.proto failover/opsapi/opspb/*.proto

clean:
	rm -rf $(BIN) bench.txt

# Real CometBFT node tests alone (make test runs them too).
include signer/privval/cometbft.mk
