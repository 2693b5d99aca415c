# otelite build. `make run` and `make check` work on a fresh Debian 12 as
# root: the `deps` step installs whatever Debian package below is missing.
#
#   make            build build/otelite and build/otelite-loadgen
#   make run        build and run conf/agent.yaml
#   make check      build and run every test (unit, end-to-end, interop, fuzz smoke, bench smoke)
#   make asan check the same under AddressSanitizer + UBSan (build/asan/)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make bench      benchmarks; see README "Benchmarks"

# Every Debian package the build, the tests and the benchmarks use. One list.
DEB_PACKAGES := build-essential pkg-config clang libclang-rt-14-dev \
	protobuf-c-compiler libprotobuf-c-dev libyaml-dev libjansson-dev \
	libnghttp2-dev libssl-dev zlib1g-dev libzstd-dev \
	libcurl4-openssl-dev libpcre2-dev libcriterion-dev \
	python3 python3-pytest python3-grpcio python3-protobuf protobuf-compiler \
	python3-thrift thrift-compiler \
	prometheus curl openssl valgrind gnuplot-nox nodejs npm python3-statsd \
	python3-msgpack python3-zstandard \
	libsnappy-dev python3-snappy libcrypt-dev
# Packaging (make deb, tests/e2e/test_packaging.py): sd_notify, the .deb's checks.
DEB_PACKAGES += libsystemd-dev dpkg-dev fakeroot lintian python3-yaml systemd

LIBS_PC := libprotobuf-c yaml-0.1 jansson libnghttp2 zlib \
	libzstd libpcre2-8
# libsystemd: headers only; agent/pipeline/notify.c opens the library under systemd.
LIBS_PC_HEADERS := libsystemd
# libcurl: headers only; agent/net/curl_load.c opens it when an HTTP client is made.
LIBS_PC_HEADERS += libcurl
# openssl: headers only; agent/base/openssl_load.c opens libssl on first use.
LIBS_PC_HEADERS += openssl

ifneq ($(filter asan,$(MAKECMDGOALS)),)
  BUILD ?= build/asan
  SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT := -O1
else
  BUILD ?= build
  SAN :=
  OPT := -O2
endif

CC ?= cc
HARDEN := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fcf-protection
ifneq ($(SAN),)
  HARDEN := -fstack-protector-strong -fPIE
endif
WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wno-format-truncation
PC_CFLAGS = $(shell pkg-config --cflags $(LIBS_PC) $(LIBS_PC_HEADERS) 2>/dev/null)
PC_LIBS = $(shell pkg-config --libs $(LIBS_PC) 2>/dev/null)
GIT_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
VERSION := 0.1.0

CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(HARDEN) $(SAN) -pthread \
	-I agent -I $(BUILD)/gen $(PC_CFLAGS) \
	-DOT_VERSION=\"$(VERSION)\" $(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(SAN) -pthread $(LDFLAGS)
# libsnappy (no .pc file): agent/base/snappy_load.c opens it on first use.
LDLIBS_ALL = $(PC_LIBS) -lcrypt -lm $(LDLIBS)

# A component's own .proto files stay in its folder (exporters/NAME/proto/);
# every file compiles into the one flat gen/ directory, so names are unique.
PROTO_DIRS := agent/proto $(wildcard exporters/*/proto)
PROTOS := $(wildcard $(addsuffix /*.proto,$(PROTO_DIRS)))
vpath %.proto $(PROTO_DIRS)
GEN_C := $(patsubst %.proto,$(BUILD)/gen/%.pb-c.c,$(notdir $(PROTOS)))
GEN_O := $(GEN_C:.c=.o)

LIB_SRC := $(wildcard agent/*/*.c) \
	$(wildcard receivers/*/*.c processors/*/*.c exporters/*/*.c extensions/*/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(GEN_O)
LOADGEN_SRC := $(wildcard tests/bench/loadgen/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
FUZZ_SRC := $(wildcard tests/fuzz/*.c)

layers:
	@bash agent/layers.sh

.PHONY: layers docs all deps run check check-unit check-e2e check-fuzz asan fuzz bench bench-icount clean
.DEFAULT_GOAL := all
.SECONDARY:

all: deps layers $(BUILD)/otelite $(if $(LOADGEN_SRC),$(BUILD)/otelite-loadgen)

asan:
	@:

# Installs the Debian packages that are missing, in one apt-get call.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  case "$$p" in nodejs|npm) command -v $${p%js} >/dev/null 2>&1 && continue;; esac; \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "deps: run as root or install:$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: %.proto | deps
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -I $(dir $<) $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@echo "  CC $<"
	@$(CC) $(filter-out -Wshadow,$(CFLAGS_ALL)) -c -o $@ $<

# The revision header changes only when `git describe` does, so only
# version.c recompiles after a commit.
$(BUILD)/gen/revision.h: FORCE | deps
	@mkdir -p $(BUILD)/gen
	@echo '#define OT_REVISION "$(GIT_VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/obj/agent/base/version.o: $(BUILD)/gen/revision.h
FORCE:

# Every object waits for all generated headers: any file may include otlp.h.
$(BUILD)/obj/%.o: %.c $(GEN_C) | deps
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(BUILD)/libotelite.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/otelite: $(BUILD)/obj/agent/main.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/otelite-loadgen: $(patsubst %.c,$(BUILD)/obj/%.o,$(LOADGEN_SRC)) $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/unit-tests: $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRC)) $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) -lcriterion -lssl -lcrypto # tests call OpenSSL themselves

# Test helper for tests/interop/test_jaeger_decode.py; not in the agent.
$(BUILD)/jaeger-encode: $(BUILD)/obj/tests/interop/jaeger_encode.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# docs/components.md is generated from the key tables; a test keeps it current.
docs: all
	$(BUILD)/otelite components --format markdown > docs/components.md

run: all
	$(BUILD)/otelite run --config conf/agent.yaml

# The test command of the README. Each part prints its own summary; the
# last line is the total, as "N passed, N failed".
check: all $(BUILD)/unit-tests $(BUILD)/bench-filter $(BUILD)/bench-store $(BUILD)/jaeger-encode \
	$(BUILD)/bench-datadog
	@BUILD=$(BUILD) bash tests/run-all.sh

check-unit: all $(BUILD)/unit-tests
	$(BUILD)/unit-tests

check-e2e: all $(BUILD)/jaeger-encode
	OTELITE_BIN=$(BUILD)/otelite /usr/bin/python3 -m pytest -q tests/e2e tests/interop

# ---- long runs, not in make check --------------------------------------
.PHONY: valgrind soak
# The e2e tests with every agent under valgrind: zero errors, zero leaks.
valgrind: all
	@BUILD=$(BUILD) bash tests/valgrind/run.sh
# 10 minutes of every receiver at half its maximum rate, a reload a minute.
soak: all $(BUILD)/otelite-loadgen
	@BUILD=$(BUILD) /usr/bin/python3 tests/soak/soak.py

# ---- fuzzing (clang + libFuzzer; its own build tree) -------------------
FUZZ_BUILD := build/fuzz
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
	-I agent -I $(FUZZ_BUILD)/gen $(PC_CFLAGS)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRC)) \
	$(patsubst %.proto,$(FUZZ_BUILD)/gen/%.pb-c.o,$(notdir $(PROTOS)))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60

$(FUZZ_BUILD)/gen/%.pb-c.c: %.proto | deps
	@mkdir -p $(FUZZ_BUILD)/gen
	protoc-c --c_out=$(FUZZ_BUILD)/gen -I $(dir $<) $<
# Constant, so written once: a fresh mtime would rebuild every fuzz object.
$(FUZZ_BUILD)/gen/revision.h:
	@mkdir -p $(FUZZ_BUILD)/gen
	@echo '#define OT_REVISION "fuzz"' > $@
$(FUZZ_BUILD)/gen/%.pb-c.o: $(FUZZ_BUILD)/gen/%.pb-c.c
	clang $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_BUILD)/obj/%.o: %.c $(patsubst %.proto,$(FUZZ_BUILD)/gen/%.pb-c.c,$(notdir $(PROTOS))) $(FUZZ_BUILD)/gen/revision.h | deps
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
$(FUZZ_BUILD)/libotelite.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_BUILD)/libotelite.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $(filter %.c %.a,$^) $(PC_LIBS) -lsnappy -lcrypt -lm -pthread
# Header dependencies of the fuzz tree, so a changed header rebuilds what uses it.
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

fuzz-build: deps $(FUZZ_BINS)

# Runs each target for FUZZ_SECONDS on its seed corpus (tests/fuzz/corpus/NAME).
fuzz: fuzz-build
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz/corpus/$$n tests/fuzz/corpus/$$n || exit 1; done

bench: all $(BUILD)/bench-filter $(BUILD)/bench-store $(BUILD)/bench-jaeger $(BUILD)/bench-prom $(BUILD)/bench-prw \
	$(BUILD)/bench-datadog
	@BUILD=$(BUILD) bash tests/bench/run.sh
	@echo; echo "filter processor, 5 conditions (tests/bench/bench_filter.c):"
	@$(BUILD)/bench-filter
	@echo; $(BUILD)/bench-store
	@echo; echo "jaeger translation and encoding (tests/bench/bench_jaeger.c):"
	@$(BUILD)/bench-jaeger
	@echo; $(BUILD)/bench-prom 100000
	@echo; $(BUILD)/bench-prom 1000000
	@echo; $(BUILD)/bench-prw
	@echo; $(BUILD)/bench-datadog
	@echo; BUILD=$(BUILD) /usr/bin/python3 tests/bench/bench_datadog.py
	@echo; BUILD=$(BUILD) /usr/bin/python3 tests/bench/bench_prom.py

# Filter cost per span with 5 conditions: a micro-benchmark, not a scenario.
$(BUILD)/bench-filter: $(BUILD)/obj/tests/bench/bench_filter.o $(BUILD)/obj/tests/unit/otlp_samples.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Processors on the wire form and decoded, per item: a micro-benchmark (issue 19),
# run by make bench before the scenarios.
.PHONY: bench-wireproc
bench: bench-wireproc
bench-wireproc: $(BUILD)/bench-wireproc
	@echo "processors in-process, wire form and decoded (tests/bench/bench_wireproc.c):"
	@$(BUILD)/bench-wireproc
$(BUILD)/bench-wireproc: $(BUILD)/obj/tests/bench/bench_wireproc.o $(BUILD)/obj/tests/unit/otlp_samples.o $(BUILD)/obj/tests/bench/loadgen/content.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# DogStatsD aggregation without sockets: memory per series, instructions per line.
$(BUILD)/bench-dsd-agg: $(BUILD)/obj/tests/bench/bench_dsd_agg.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)
bench: bench-dsd-agg
.PHONY: bench-dsd-agg
bench-dsd-agg: $(BUILD)/bench-dsd-agg
	@echo; $(BUILD)/bench-dsd-agg mem 100000; $(BUILD)/bench-dsd-agg mem 1000000

# DogStatsD parser cost per line: a micro-benchmark, not yet part of make bench.
$(BUILD)/bench-dsd-parse: $(BUILD)/obj/tests/bench/bench_dsd_parse.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bench-jsonlog-parse: $(BUILD)/obj/tests/bench/bench_jsonlog_parse.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Metric stream store: lookups/s of existing streams, bytes per stream.
$(BUILD)/bench-store: $(BUILD)/obj/tests/bench/bench_store.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Prometheus exporter: ingestion, bytes per series, scrape time, ingestion while scraped.
$(BUILD)/bench-prom: $(BUILD)/obj/tests/bench/bench_prom.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Prometheus remote write: samples/s, CPU per million samples, bytes per sample.
$(BUILD)/bench-prw: $(BUILD)/obj/tests/bench/bench_prw.o $(BUILD)/obj/tests/unit/otlp_samples.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Jaeger translation and encoding cost per span: a micro-benchmark.
$(BUILD)/bench-jaeger: $(BUILD)/obj/tests/bench/bench_jaeger.o $(BUILD)/obj/tests/unit/otlp_samples.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Datadog exporter: decode, delta, translation, framing and gzip per item.
$(BUILD)/bench-datadog: $(BUILD)/obj/tests/bench/bench_datadog.o $(BUILD)/obj/tests/unit/otlp_samples.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Instruction counts (callgrind) of decode, batch and encode on a fixed corpus.
$(BUILD)/otelite-icount: $(BUILD)/obj/tests/bench/icount.o $(BUILD)/obj/tests/bench/loadgen/content.o $(BUILD)/libotelite.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

bench-icount: all $(BUILD)/otelite-icount
	@BUILD=$(BUILD) /usr/bin/python3 tests/bench/bench.py --icount

clean:
	rm -rf build

# The Debian package from $(BUILD)'s binaries: $(BUILD)/otelite_$(VERSION)_ARCH.deb
# (packaging/debian/build-deb.sh; tests/e2e/test_packaging.py installs it).
.PHONY: deb
deb: all
	@bash packaging/debian/build-deb.sh $(BUILD) $(VERSION)
