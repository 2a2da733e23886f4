# tests/fuzz/fuzz.mk - libFuzzer targets, included by the Makefile.
#
#   make fuzz         builds every tests/fuzz/fuzz_<name>.c into
#                     $(BUILD)/fuzz/fuzz_<name> (clang, libFuzzer, ASan, UBSan)
#   make fuzz-smoke   runs each of them for FUZZ_TIME seconds over its seed
#                     corpus tests/fuzz/corpus/<name>/ (new inputs go to
#                     $(BUILD)/fuzz/corpus-<name>/, the seeds stay as they are)
#
# A target names the sources it links in FUZZ_SRC_<name> (headers may be
# listed too, they only count as dependencies); a dictionary
# tests/fuzz/<name>.dict is used when it exists.  Adding a target is adding
# tests/fuzz/fuzz_<name>.c, its corpus directory and one FUZZ_SRC_ line
# (FUZZ_CFLAGS_<name> and FUZZ_LIBS_<name> when it needs more).
# docs/FUZZING.md has the figures and how to run longer campaigns.

FUZZ_CC     ?= clang
FUZZ_SAN    ?= fuzzer,address,undefined
# clang's -Wformat=2 also flags the va_list forwarding in common/buf.c,
# which gcc accepts: that one warning is off here.
FUZZ_CFLAGS ?= -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
               -fsanitize=$(FUZZ_SAN) -fno-sanitize-recover=undefined \
               $(W) -Wno-format-nonliteral -I.
FUZZ_LIBS   ?= -lcrypto
FUZZ_TIME   ?= 20
FUZZ_FLAGS  ?= -timeout=10 -rss_limit_mb=2048

FUZZ_SRC_mime := $(wildcard backend/mime/*.c backend/mime/*.h) \
                 common/buf.c common/buf.h common/arena.c common/arena.h
FUZZ_LIBS_mime := -lz

FUZZ_SRC_imap_parser := common/lineparse.c common/lineparse.h \
                        common/imap_parser.c common/imap_parser.h \
                        common/buf.c common/buf.h common/arena.c \
                        common/arena.h

FUZZ_SRC_proxy := common/proxy_proto.c common/proxy_proto.h

FUZZ_SRC_line := common/lineparse.c common/lineparse.h common/buf.c common/buf.h

FUZZ_SRC_http_xml := frontend/http/http_xml.c frontend/http/http_xml.h \
                     common/http_util.c common/http.h common/buf.c \
                     common/buf.h

# SEARCH against a real store (in a temporary directory), with the session
# output captured by the target itself.
FUZZ_SRC_search := backend/imap/imap_cmd_search.c backend/imap/imap_seqset.c \
                   backend/imap/imap_mutf7.c backend/imap/imap_casefold.c \
                   backend/imap/imap.h \
                   $(wildcard backend/store/*.c backend/store/*.h) \
                   $(wildcard backend/mime/*.c backend/mime/*.h) \
                   common/lineparse.c common/imap_parser.c common/config.c \
                   common/settings.def common/buf.c common/arena.c \
                   common/log.c common/metrics.c common/metrics.h \
                   $(PROTO_H)
FUZZ_CFLAGS_search := -I$(BUILD)/gen
FUZZ_LIBS_search := -llmdb -luv -lpthread -lz -lunistring \
                    $(shell pkg-config --libs inih 2>/dev/null)

# import --account against a real store (in a temporary directory), with
# portico-admin's check and remove as the judges.
FUZZ_SRC_account := backend/admin/admin_account.c \
                    backend/admin/admin_store.c \
                    backend/admin/admin_check.c backend/admin/admin_users.c \
                    backend/admin/admin_directory.c backend/admin/admin.h \
                    $(filter-out backend/main.c backend/admin.c \
                      backend/admin/%,$(BACK_SRC)) \
                    $(wildcard common/*.c) $(APROTO_C) $(QPROTO_C) \
                    $(PROTO_C) $(PROTO_H)
FUZZ_CFLAGS_account := -I$(BUILD)/gen -Wno-error
FUZZ_LIBS_account := -llmdb -luv -lpthread -lz -lprotobuf-c -lldap -llber \
                     -lssl -lhttp_parser -lunistring \
                     $(shell pkg-config --libs inih 2>/dev/null)

# The automatic reply's decision and message; the backend's sources for
# the queue entry it prepares (nothing is stored).
FUZZ_SRC_auto_reply := $(filter-out backend/main.c backend/admin.c \
                         backend/admin/%,$(BACK_SRC)) \
                       $(wildcard common/*.c) $(QPROTO_C) $(APROTO_C) \
                       $(PROTO_C) $(PROTO_H)
FUZZ_CFLAGS_auto_reply := -I$(BUILD)/gen -Wno-error
FUZZ_LIBS_auto_reply := $(FUZZ_LIBS_account)

FUZZ_SRC_smtp := common/smtp_parser.c common/smtp_parser.h common/buf.c \
                 common/buf.h

# The generated protobuf-c code comes from the Makefile's rule for $(PROTO_C).
FUZZ_SRC_link := common/link.c common/link.h common/buf.c common/buf.h \
                 $(PROTO_C) $(PROTO_H)
FUZZ_CFLAGS_link := -I$(BUILD)/gen -Wno-error
FUZZ_LIBS_link := -lprotobuf-c

FUZZ_SRC_ldap_escape := frontend/ldap_escape.c frontend/directory.h

FUZZ_SRC_config := common/config.c common/config.h common/settings.def
FUZZ_LIBS_config := $(shell pkg-config --libs inih 2>/dev/null)

# imap.h pulls in the backend's headers; only the one file is linked.
FUZZ_SRC_mutf7 := backend/imap/imap_mutf7.c backend/imap/imap.h \
                  common/buf.c common/buf.h $(PROTO_H)
FUZZ_CFLAGS_mutf7 := -I$(BUILD)/gen

FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

define FUZZ_RULE
$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $$(FUZZ_SRC_$(1))
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(FUZZ_CFLAGS_$(1)) -o $$@ \
		$$(filter %.c,$$^) $$(FUZZ_LIBS) $$(FUZZ_LIBS_$(1))
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(n))))

fuzz: $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_BINS)
	@set -e; for n in $(FUZZ_NAMES); do \
		echo "== fuzz_$$n ($(FUZZ_TIME)s)"; \
		mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
		$(BUILD)/fuzz/fuzz_$$n $(FUZZ_FLAGS) $$dict \
			-max_total_time=$(FUZZ_TIME) \
			$(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n; \
	done

.PHONY: fuzz fuzz-smoke
