# agora — the two commands: `make run` (a dev cluster on :5050) and `make test`.
GO      ?= go
BIN     := bin/agora
PKGS    := ./...

.PHONY: run test deps test-deps build bench vet fmt clean

# bin/agora-init is the container init on its own, which every isolated
# launch starts: the static C program of the same protocol when a C compiler
# is there (it starts several times cheaper than any Go program), else the
# Go one (cmd/agora-init). bin/agora uses it only if it is this very build
# of it (the SHA-256 stamped into bin/agora).
# musl's start-up does less than glibc's (no probing of the CPU, whose
# cpuid instructions trap to the hypervisor on a virtual machine) and its
# static binary is a tenth of the size: preferred when it is installed.
INIT_CC   ?= $(shell command -v musl-gcc 2>/dev/null || echo $(CC))
INIT_C    := cluster/containerizer/containerinit/cinit/agora-init.c
INIT_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -static -s

build:
	@mkdir -p bin
	@if command -v $(INIT_CC) >/dev/null 2>&1 && $(INIT_CC) $(INIT_CFLAGS) -o bin/agora-init $(INIT_C); then \
		echo "bin/agora-init: the C init ($(INIT_C), built with $(INIT_CC))" >&2; \
	else \
		echo "bin/agora-init: no C compiler ($(INIT_CC)) or it failed; the Go init (cmd/agora-init)" >&2; \
		CGO_ENABLED=0 $(GO) build -o bin/agora-init ./cmd/agora-init; \
	fi
	CGO_ENABLED=0 $(GO) build -ldflags "-X github.com/agora-cluster/agora/cluster/containerizer.initSHA256=$$(sha256sum bin/agora-init | cut -d' ' -f1)" -o $(BIN) ./cmd/agora

## run: a dev cluster (master, agents, UI on http://127.0.0.1:5050) on its embedded defaults.
run: deps build
	$(BIN) dev

## deps: install what `make run` needs (Go modules); test-deps: what the
## tests need too (Chromium, a Docker Engine, a JDK, Maven and the upstream
## engines from Maven Central). Both are idempotent.
deps:
	@GO=$(GO) scripts/deps.sh

test-deps:
	@GO=$(GO) scripts/deps.sh test

## test: everything: every fuzz target for a few seconds (scripts/fuzz.sh,
## FUZZTIME), then vet, unit, in-process cluster and real-process tests.
## The suite runs even if fuzzing failed, and its count closes the output;
## either failing fails the target.
test: test-deps
	GO=$(GO) scripts/fuzz.sh; fuzz=$$?; GO=$(GO) scripts/test.sh $(PKGS) && exit $$fuzz

## bench: allocator and launch benchmarks (numbers, not pass/fail).
bench: build
	$(BIN) bench allocator --scenario DeclineOffers --agents 1000,10000 --frameworks 100,1000
	scripts/bench-launch.sh

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
