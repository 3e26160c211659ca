# tachikoma — developer entry points. `make test` works on a fresh Debian machine: it finds
# deno (PATH, else the pinned npm `deno` package bootstrapped into .cache/), installs the
# locked npm dependencies, the apt tools the tests use and, as root on Linux, the Incus lab.

DENO_VERSION := 2.9.6
CACHE_DIR    := $(CURDIR)/.cache
BOOT_DENO    := $(CACHE_DIR)/deno-$(DENO_VERSION)/node_modules/.bin/deno
DENO         ?= $(shell command -v deno 2>/dev/null || echo $(BOOT_DENO))
TEST_FLAGS   ?=
UNAME_S      := $(shell uname -s)
IS_ROOT      := $(shell [ "$$(id -u)" = 0 ] && echo yes)
APT_TOOLS    := git openssh-client openssh-server zsh fish curl ca-certificates hyperfine ruby acl
ARGS         ?=
BENCH_ARGS   ?=

.PHONY: all deno deps tools lab lab-down test test-unit test-integration check fmt fmt-check lint \
        typecheck run bench compile formula lab-if-possible test-tart-real clean

all: check

# --- toolchain -----------------------------------------------------------------------------
$(BOOT_DENO):
	@echo "bootstrapping deno $(DENO_VERSION) from npm into $(CACHE_DIR)" >&2
	@mkdir -p $(CACHE_DIR)/deno-$(DENO_VERSION)
	@cd $(CACHE_DIR)/deno-$(DENO_VERSION) && npm install --no-save --no-audit --no-fund \
		--prefix . deno@$(DENO_VERSION) >/dev/null
	@$(BOOT_DENO) --version | head -1 >&2

deno:
	@if [ "$(DENO)" = "$(BOOT_DENO)" ]; then $(MAKE) --no-print-directory $(BOOT_DENO); fi

deps: deno
	@mkdir -p $(CACHE_DIR)
	@$(DENO) install --frozen >/dev/null 2>$(CACHE_DIR)/install.log || \
		{ cat $(CACHE_DIR)/install.log >&2; exit 1; }

tools:
	@missing=""; for t in git ssh sshd zsh fish curl hyperfine ruby setfacl; do \
		command -v $$t >/dev/null 2>&1 || [ -x /usr/sbin/$$t ] || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$(IS_ROOT)" = yes ] && command -v apt-get >/dev/null; then \
			echo "installing test tools:$$missing" >&2; \
			apt-get update -qq >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				$(APT_TOOLS) >/dev/null; \
		else echo "missing test tools:$$missing (tests needing them are skipped)" >&2; fi; \
	fi

# --- the Incus lab (real Linux guests for integration tests) -------------------------------
lab: deno
	@DENO=$(DENO) bash tests/lab/up.sh

lab-down:
	@bash tests/lab/down.sh

# In CI (CI set) as root on Linux the lab is required: a lab that cannot start fails the run
# instead of quietly skipping every integration test. Elsewhere its tests are skipped.
lab-if-possible:
	@if [ "$(UNAME_S)" = Linux ] && [ "$(IS_ROOT)" = yes ]; then \
		DENO=$(DENO) bash tests/lab/up.sh || { \
			if [ -n "$$CI" ]; then echo "lab: could not start, and CI needs it" >&2; exit 1; fi; \
			echo "lab: could not start (integration tests will be skipped)" >&2; }; \
	else echo "lab: skipped (needs root on Linux); integration tests will be skipped" >&2; fi

# --- tests and checks ----------------------------------------------------------------------
test: deps tools lab-if-possible
	$(DENO) test --allow-all --frozen $(TEST_FLAGS)

test-unit: deps
	$(DENO) test --allow-all --frozen tests/unit $(TEST_FLAGS)

test-integration: deps tools lab-if-possible
	$(DENO) test --allow-all --frozen tests/integration $(TEST_FLAGS)

test-tart-real: deps
	TACHIKOMA_TART_REAL=1 $(DENO) test --allow-all --frozen tests/integration/tart_contract_test.ts

fmt: deps
	$(DENO) fmt

fmt-check: deps
	$(DENO) fmt --check

lint: deps
	$(DENO) lint

typecheck: deps
	$(DENO) check main.ts src/ tests/ bench/

check: deps
	$(DENO) fmt --check
	$(DENO) lint
	$(DENO) check main.ts src/ tests/ bench/
	$(MAKE) --no-print-directory test

run: deps
	@$(DENO) run --allow-all --frozen main.ts $(ARGS)

# Every benchmark, each target as a ratio against its same-run baseline; BENCH_ARGS=--quick for
# fewer runs, or bench names (startup spawn proxy incus) to run only those.
bench: deps tools
	$(DENO) run --allow-all --frozen bench/run.ts $(BENCH_ARGS)

# --- release -------------------------------------------------------------------------------
compile: deps
	@bash scripts/compile.sh "$(DENO)" $(TARGETS)

formula: deps
	@test -n "$(VERSION)" || { echo "usage: make formula VERSION=x.y.z" >&2; exit 2; }
	@$(DENO) run --allow-read --allow-write --frozen scripts/formula.ts "$(VERSION)"
	@ruby -c Formula/tachikoma.rb >/dev/null && echo "Formula/tachikoma.rb: syntax ok" >&2

clean:
	rm -rf dist .cache
