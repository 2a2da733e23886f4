# Portico - one non-recursive Makefile.
#
#   make            build the daemons and the admin tool into $(BUILD)
#   make run        build, then start a single-site deployment (Ctrl-C stops)
#   make test       build as `make run` does (-O2, which warns about more),
#                   then with ASan+UBSan; run unit and end-to-end tests
#   make unit       unit tests only
#   make format     clang-format the C sources
#
# SANITIZE=address,undefined switches the sanitizers on for any build.

BUILD    ?= build
CC       ?= cc
PKGS     := libuv lmdb libprotobuf-c ldap openssl inih zlib
OPT      ?= -O2
W         = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wvla -Wformat=2 \
            -Wno-unused-parameter -Wno-missing-field-initializers
PYTHON   ?= /usr/bin/python3

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   += -std=c11 -D_GNU_SOURCE -g $(OPT) $(W) -I. -I$(BUILD)/gen \
            $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS   += $(PKG_LIBS) -lhttp_parser -lunistring -pthread
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# -- sources ---------------------------------------------------------------

PROTO_SRC  := proto/link.proto
PROTO_C    := $(BUILD)/gen/link.pb-c.c
PROTO_H    := $(BUILD)/gen/link.pb-c.h
# The transport queue's records (backend only).
QPROTO_C   := $(BUILD)/gen/queue.pb-c.c
QPROTO_H   := $(BUILD)/gen/queue.pb-c.h
# One account's mail as a stream (portico-admin export/import --account).
APROTO_C   := $(BUILD)/gen/account.pb-c.c
APROTO_H   := $(BUILD)/gen/account.pb-c.h

COMMON_SRC := $(wildcard common/*.c)
FRONT_SRC  := $(filter-out frontend/probe/probe_main.c,\
              $(wildcard frontend/*.c frontend/*/*.c))
BACK_SRC   := $(wildcard backend/*.c backend/*/*.c)
# portico-admin: the dispatcher and its command families (admin only)
ADMIN_SRC  := backend/admin.c $(wildcard backend/admin/*.c)
BACK_LIB   := $(filter-out backend/main.c $(ADMIN_SRC),$(BACK_SRC))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(BUILD)/obj/gen/link.pb-c.o
FRONT_OBJ  := $(call obj,$(FRONT_SRC))
BACK_OBJ   := $(call obj,$(BACK_LIB)) $(BUILD)/obj/gen/queue.pb-c.o

BINS := $(BUILD)/portico-frontend $(BUILD)/portico-backend \
        $(BUILD)/portico-admin $(BUILD)/portico-probe

# the benchmarks' load generator too: the e2e smoke test runs it
all: $(BINS) $(BUILD)/bench/loadgen

$(PROTO_C) $(PROTO_H): $(PROTO_SRC)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $(PROTO_SRC)

$(BUILD)/obj/gen/link.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c -o $@ $<

$(QPROTO_C) $(QPROTO_H): proto/queue.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen proto/queue.proto

$(BUILD)/obj/gen/queue.pb-c.o: $(QPROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c -o $@ $<

$(APROTO_C) $(APROTO_H): proto/account.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen proto/account.proto

$(BUILD)/obj/gen/account.pb-c.o: $(APROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c -o $@ $<

$(BUILD)/obj/%.o: %.c | $(PROTO_H) $(QPROTO_H) $(APROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/portico-frontend: $(FRONT_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/portico-backend: $(call obj,backend/main.c) $(BACK_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/portico-admin: $(call obj,$(ADMIN_SRC)) $(BACK_OBJ) $(COMMON_OBJ) \
		$(BUILD)/obj/gen/account.pb-c.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# connectivity probes from the command line (frontend/probe/)
$(BUILD)/portico-probe: $(call obj,frontend/probe/probe_main.c \
		frontend/probe/probe.c common/conn.c common/tls.c \
		common/tls_tickets.c \
		common/buf.c common/log.c)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# -- unit tests (cmocka): tests/unit/<dir>/test_<module>.c links only the
#    module under test and what it needs --------------------------------

UNIT_SRC  := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

$(BUILD)/unit/common/test_buf: $(call obj,common/buf.c)
$(BUILD)/unit/common/test_utc:
$(BUILD)/unit/common/test_lineparse: $(call obj,common/lineparse.c common/buf.c)
$(BUILD)/unit/common/test_imap_parser: $(call obj,common/imap_parser.c common/arena.c common/lineparse.c common/buf.c)
$(BUILD)/unit/common/test_link: $(call obj,common/link.c common/buf.c) $(BUILD)/obj/gen/link.pb-c.o
$(BUILD)/unit/common/test_config: $(call obj,common/config.c)
$(BUILD)/unit/common/test_connset: $(call obj,common/connset.c common/config.c)
$(BUILD)/unit/common/test_http_util: $(call obj,common/http_util.c common/buf.c)
$(BUILD)/unit/common/test_smtp_parser: $(call obj,common/smtp_parser.c)
$(BUILD)/unit/common/test_conn: $(call obj,common/conn.c common/tls.c common/tls_tickets.c common/buf.c common/log.c)
$(BUILD)/unit/common/test_stream_map: $(call obj,common/stream_map.c)
$(BUILD)/unit/common/test_protolog: $(call obj,common/protolog.c common/log.c common/buf.c)
$(BUILD)/unit/common/test_config_reload: $(call obj,common/config_reload.c common/config.c common/log.c)
$(BUILD)/unit/common/test_tls_tickets: $(call obj,common/tls_tickets.c)
$(BUILD)/unit/backend/test_mime: $(call obj,backend/mime/mime.c backend/mime/mime_cache.c backend/mime/mime_decode.c backend/mime/mime_imap.c backend/mime/mime_parse.c backend/mime/mime_rfc822.c backend/mime/mime_section.c common/buf.c common/arena.c)
$(BUILD)/unit/backend/test_dsn: $(call obj,backend/transport/dsn.c backend/transport/message.c common/buf.c common/config.c)
$(BUILD)/unit/backend/test_message: $(call obj,backend/transport/message.c common/buf.c common/config.c)
$(BUILD)/unit/backend/test_sendrate: $(call obj,backend/transport/sendrate.c)
$(BUILD)/unit/backend/test_user_sessions: $(call obj,backend/user_sessions.c)
$(BUILD)/unit/backend/test_store_records: $(call obj,backend/store/store.c backend/store/store_delivery.c backend/store/store_expunged.c backend/store/store_writer.c backend/store/store_ops.c backend/store/store_queue.c common/metrics.c common/buf.c)
$(BUILD)/unit/backend/test_seqset: $(call obj,backend/imap/imap_seqset.c common/buf.c common/arena.c)
$(BUILD)/unit/backend/test_casefold: $(call obj,backend/imap/imap_casefold.c common/buf.c)
$(BUILD)/unit/backend/test_store_reader: $(call obj,backend/store/store.c backend/store/store_delivery.c backend/store/store_expunged.c backend/store/store_writer.c backend/store/store_ops.c backend/store/store_queue.c common/metrics.c common/buf.c)
$(BUILD)/unit/frontend/test_ldap_escape: $(call obj,frontend/ldap_escape.c)
$(BUILD)/unit/frontend/test_proxy_proto: $(call obj,common/proxy_proto.c)
$(BUILD)/unit/frontend/test_cidr: $(call obj,common/cidr.c)
$(BUILD)/unit/frontend/test_lru: $(call obj,frontend/lru.c)
$(BUILD)/unit/frontend/test_penalty: $(call obj,frontend/penalty.c frontend/policy.c frontend/auth_cache.c frontend/limits.c frontend/lru.c common/cidr.c common/config.c)
$(BUILD)/unit/frontend/test_auth_cache: $(call obj,frontend/auth_cache.c frontend/policy.c frontend/penalty.c frontend/limits.c frontend/lru.c common/cidr.c common/config.c)
$(BUILD)/unit/frontend/test_http_xml: $(call obj,frontend/http/http_xml.c)

$(BUILD)/unit/%: tests/unit/%.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDFLAGS) $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# -- fuzz targets (libFuzzer, clang): rules in tests/fuzz/fuzz.mk ----------

-include tests/fuzz/fuzz.mk

# -- the two commands of the README -----------------------------------------

deps:
	@scripts/deps.sh

# The two commands compile on every core (the unit tests still run one
# after the other: `unit` runs them in one recipe).
JOBS := -j$(shell nproc 2>/dev/null || echo 2)

run: deps
	$(MAKE) $(JOBS) all
	scripts/stack run $(CURDIR)/run

TEST_BUILD := build/test
test: deps
	$(MAKE) $(JOBS) all
	$(MAKE) $(JOBS) BUILD=$(TEST_BUILD) SANITIZE=address,undefined OPT=-O1 \
		all unit
	$(MAKE) BUILD=$(TEST_BUILD) FUZZ_TIME=5 fuzz-smoke
	PORTICO_BUILD=$(CURDIR)/$(TEST_BUILD) $(PYTHON) -m pytest -ra tests/e2e

e2e:
	PORTICO_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) -m pytest -ra tests/e2e

# Benchmarks: numbers, never pass/fail (docs/BENCHMARKS.md).  The load
# generator (tests/bench/loadgen.c) drives Portico and Dovecot side by side.
LOADGEN := $(BUILD)/bench/loadgen
$(LOADGEN): $(call obj,tests/bench/loadgen.c common/conn.c common/tls.c \
		common/tls_tickets.c common/buf.c common/log.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: all $(LOADGEN)
	PORTICO_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) tests/bench/imap_large.py
	PORTICO_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) tests/bench/bench.py $(BENCH_ARGS)

bench-quick: all $(LOADGEN)
	PORTICO_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) tests/bench/bench.py --quick $(BENCH_ARGS)

docs/CONFIG.md: $(BUILD)/portico-admin
	$(BUILD)/portico-admin config-reference > $@

# Formats the lines changed since the last commit (.clang-format), not
# whole files: the tree is formatted already, by hand where clang-format
# and the style part ways.
format:
	git diff -U0 --no-color HEAD -- '*.c' '*.h' | clang-format-diff -p1 -i

clean:
	rm -rf build

.PHONY: all unit deps run test e2e bench bench-quick format clean

-include $(shell find $(BUILD)/obj $(BUILD)/unit -name '*.d' 2>/dev/null)
