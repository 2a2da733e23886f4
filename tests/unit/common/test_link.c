/* test_link.c - frames of the frontend <-> backend link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/link.h"

#define MAX_FRAME (1024 * 1024)

static uint32_t
get_be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	       (uint32_t)u[2] << 8 | u[3];
}

/* Packs f, checks the length prefix, decodes it again and checks that the
 * decoded frame packs to the same bytes.  Returns the decoded frame. */
static Portico__Frame *
round_trip(const Portico__Frame *f)
{
	struct buf out = BUF_INIT, again = BUF_INIT;
	const char *error = NULL;
	Portico__Frame *got = NULL;

	link_frame_pack(f, &out);
	size_t n = portico__frame__get_packed_size(f);
	assert_int_equal(buf_used(&out), n + 4);
	assert_int_equal(get_be32(buf_ptr(&out)), n);

	assert_int_equal(link_frame_next(&out, MAX_FRAME, &got, &error), 1);
	assert_non_null(got);
	assert_null(error);
	assert_int_equal(buf_used(&out), 0);

	link_frame_pack(got, &again);
	link_frame_pack(f, &out);
	assert_int_equal(buf_used(&again), buf_used(&out));
	assert_memory_equal(buf_ptr(&again), buf_ptr(&out), buf_used(&out));
	buf_free(&again);
	/* The frame owns its memory: the input may go away. */
	buf_wipe(&out);
	return got;
}

static void
test_hello(void **state)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Hello h = PORTICO__HELLO__INIT;
	char *capa[] = { "TOP", "UIDL", "SASL PLAIN" };
	h.role = "backend";
	h.name = "be-1";
	h.version = LINK_VERSION;
	h.site = 65535;
	h.imap_capabilities = "IMAP4rev1 LITERAL+ IDLE";
	h.n_pop3_capa = 3;
	h.pop3_capa = capa;
	f.stream = 0;
	f.body_case = PORTICO__FRAME__BODY_HELLO;
	f.hello = &h;

	Portico__Frame *g = round_trip(&f);
	assert_int_equal(g->stream, 0);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_HELLO);
	assert_string_equal(g->hello->role, "backend");
	assert_string_equal(g->hello->name, "be-1");
	assert_string_equal(g->hello->version, "portico-link/5");
	assert_int_equal(g->hello->site, 65535);
	assert_string_equal(g->hello->imap_capabilities,
			    "IMAP4rev1 LITERAL+ IDLE");
	assert_int_equal(g->hello->n_pop3_capa, 3);
	assert_string_equal(g->hello->pop3_capa[0], "TOP");
	assert_string_equal(g->hello->pop3_capa[1], "UIDL");
	assert_string_equal(g->hello->pop3_capa[2], "SASL PLAIN");
	link_frame_free(&g);
	assert_null(g);
}

static void
test_ping_pong(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	link_send_ping(&b, 42, 0);
	link_send_ping(&b, UINT64_MAX, 1);
	Portico__Frame *g = NULL;
	const char *err = NULL;
	assert_int_equal(link_frame_next(&b, 1 << 20, &g, &err), 1);
	assert_int_equal(g->stream, 0);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_PING);
	assert_true(g->ping->seq == 42);
	link_frame_free(&g);
	assert_int_equal(link_frame_next(&b, 1 << 20, &g, &err), 1);
	assert_int_equal(g->stream, 0);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_PONG);
	assert_true(g->pong->seq == UINT64_MAX);
	link_frame_free(&g);
	assert_int_equal(link_frame_next(&b, 1 << 20, &g, &err), 0);
	buf_free(&b);
}

static void
test_forget(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	link_send_forget(&b, "3f2a9c0d41e87b65", 0);
	link_send_forget(&b, "77", 3600000);
	Portico__Frame *g = NULL;
	const char *err = NULL;
	assert_int_equal(link_frame_next(&b, 1 << 20, &g, &err), 1);
	assert_int_equal(g->stream, 0);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_FORGET);
	assert_string_equal(g->forget->mailbox_id, "3f2a9c0d41e87b65");
	assert_true(g->forget->age_ms == 0);
	link_frame_free(&g);
	assert_int_equal(link_frame_next(&b, 1 << 20, &g, &err), 1);
	assert_string_equal(g->forget->mailbox_id, "77");
	assert_true(g->forget->age_ms == 3600000);
	link_frame_free(&g);
	assert_int_equal(link_frame_next(&b, 1 << 20, &g, &err), 0);
	buf_free(&b);
}

/* Park (with its ImapPark state), Parked and Watch: link version 5. */
static void
test_park_frames(void **state)
{
	(void)state;
	uint32_t runs[] = {1, 3, 10, 1, 4000000000u, 2};
	Portico__ImapPark ip = PORTICO__IMAP_PARK__INIT;
	ip.version = 1;
	ip.selected = 1;
	ip.mbox_name = "Archive/2026";
	ip.uidvalidity = 1764000000;
	ip.modseq = 1ULL << 40;
	ip.uids = runs;
	ip.n_uids = 6;
	ip.idle_tag = "A7";
	uint8_t packed[256];
	size_t n = portico__imap_park__pack(&ip, packed);
	assert_true(n < sizeof(packed));

	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Park p = PORTICO__PARK__INIT;
	p.state.data = packed;
	p.state.len = n;
	p.mbox_id = 77;
	p.modseq = ip.modseq;
	p.received = 12345;
	f.stream = 9;
	f.body_case = PORTICO__FRAME__BODY_PARK;
	f.park = &p;
	Portico__Frame *g = round_trip(&f);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_PARK);
	assert_int_equal(g->park->mbox_id, 77);
	assert_int_equal(g->park->received, 12345);
	Portico__ImapPark *back = portico__imap_park__unpack(
	    NULL, g->park->state.len, g->park->state.data);
	assert_non_null(back);
	assert_string_equal(back->mbox_name, "Archive/2026");
	assert_int_equal(back->n_uids, 6);
	assert_int_equal(back->uids[4], 4000000000u);
	assert_int_equal(back->modseq, 1ULL << 40);
	assert_string_equal(back->idle_tag, "A7");
	assert_false(back->between_commands);
	assert_false(g->park->between_commands);
	portico__imap_park__free_unpacked(back, NULL);
	link_frame_free(&g);

	/* a session parked between commands: no tag, no mailbox watched */
	ip.idle_tag = "";
	ip.between_commands = 1;
	n = portico__imap_park__pack(&ip, packed);
	p.state.len = n;
	p.mbox_id = 0;
	p.between_commands = 1;
	g = round_trip(&f);
	assert_true(g->park->between_commands);
	assert_int_equal(g->park->mbox_id, 0);
	back = portico__imap_park__unpack(NULL, g->park->state.len,
					  g->park->state.data);
	assert_non_null(back);
	assert_true(back->between_commands);
	assert_string_equal(back->idle_tag, "");
	assert_string_equal(back->mbox_name, "Archive/2026");
	portico__imap_park__free_unpacked(back, NULL);
	link_frame_free(&g);

	Portico__Parked pd = PORTICO__PARKED__INIT;
	f.body_case = PORTICO__FRAME__BODY_PARKED;
	f.parked = &pd;
	g = round_trip(&f);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_PARKED);
	link_frame_free(&g);

	Portico__Watch w = PORTICO__WATCH__INIT;
	w.mailbox_id = "0123abcd";
	w.mbox_id = 77;
	w.modseq = 5;
	w.session_id = "s1f1-1";
	f.body_case = PORTICO__FRAME__BODY_WATCH;
	f.watch = &w;
	g = round_trip(&f);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_WATCH);
	assert_string_equal(g->watch->mailbox_id, "0123abcd");
	assert_int_equal(g->watch->modseq, 5);
	link_frame_free(&g);
}

static void
test_version_number(void **state)
{
	(void)state;
	assert_int_equal(link_version_number(LINK_VERSION), 5);
	assert_int_equal(link_version_number("portico-link/1"), 1);
	assert_int_equal(link_version_number("portico-link/17"), 17);
	assert_int_equal(link_version_number("portico-link/"), 0);
	assert_int_equal(link_version_number("other/3"), 0);
	assert_int_equal(link_version_number(""), 0);
	assert_int_equal(link_version_number(NULL), 0);
	assert_int_equal(link_version_number("portico-link/99999999999"), 0);
}

static void
test_open(void **state)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Open o = PORTICO__OPEN__INIT;
	o.protocol = PORTICO__PROTOCOL__PROTOCOL_POP3;
	o.user = "bob@example.org";
	o.mailbox_id = "mbx-42";
	o.client_addr = "[2001:db8::1]:50000";
	o.tls = 1;
	o.tls_cipher = "TLS_AES_256_GCM_SHA384";
	o.session_id = "s-0001";
	o.tag = "a1";
	o.window = 262144;
	f.stream = 7;
	f.body_case = PORTICO__FRAME__BODY_OPEN;
	f.open = &o;

	Portico__Frame *g = round_trip(&f);
	assert_int_equal(g->stream, 7);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_OPEN);
	assert_int_equal(g->open->protocol, PORTICO__PROTOCOL__PROTOCOL_POP3);
	assert_string_equal(g->open->user, "bob@example.org");
	assert_string_equal(g->open->mailbox_id, "mbx-42");
	assert_string_equal(g->open->client_addr, "[2001:db8::1]:50000");
	assert_true(g->open->tls);
	assert_string_equal(g->open->tls_cipher, "TLS_AES_256_GCM_SHA384");
	assert_string_equal(g->open->session_id, "s-0001");
	assert_string_equal(g->open->tag, "a1");
	assert_int_equal(g->open->window, 262144);
	link_frame_free(&g);

	/* Defaults survive too: empty strings, false, 0. */
	Portico__Open empty = PORTICO__OPEN__INIT;
	f.open = &empty;
	f.stream = UINT32_MAX;
	g = round_trip(&f);
	assert_int_equal(g->stream, UINT32_MAX);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_OPEN);
	assert_int_equal(g->open->protocol, PORTICO__PROTOCOL__PROTOCOL_NONE);
	assert_string_equal(g->open->user, "");
	assert_false(g->open->tls);
	assert_int_equal(g->open->window, 0);
	link_frame_free(&g);
}

static void
test_opened(void **state)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Opened o = PORTICO__OPENED__INIT;
	o.window = 65536;
	f.stream = 3;
	f.body_case = PORTICO__FRAME__BODY_OPENED;
	f.opened = &o;
	Portico__Frame *g = round_trip(&f);
	assert_int_equal(g->stream, 3);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_OPENED);
	assert_int_equal(g->opened->window, 65536);
	link_frame_free(&g);
}

static void
test_refused(void **state)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Refused r = PORTICO__REFUSED__INIT;
	r.code = "SYS/TEMP";
	r.reason = "store is being moved";
	r.temporary = 1;
	f.stream = 9;
	f.body_case = PORTICO__FRAME__BODY_REFUSED;
	f.refused = &r;
	Portico__Frame *g = round_trip(&f);
	assert_int_equal(g->stream, 9);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_REFUSED);
	assert_string_equal(g->refused->code, "SYS/TEMP");
	assert_string_equal(g->refused->reason, "store is being moved");
	assert_true(g->refused->temporary);
	link_frame_free(&g);
}

static void
test_data_binary(void **state)
{
	unsigned char bytes[512];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(255 - i % 256);
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Data d = PORTICO__DATA__INIT;
	d.data.data = bytes;
	d.data.len = sizeof(bytes);
	f.stream = 1;
	f.body_case = PORTICO__FRAME__BODY_DATA;
	f.data = &d;
	Portico__Frame *g = round_trip(&f);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_DATA);
	assert_int_equal(g->data->data.len, sizeof(bytes));
	assert_memory_equal(g->data->data.data, bytes, sizeof(bytes));
	link_frame_free(&g);

	/* Through the helper, with NULs and line ends. */
	struct buf out = BUF_INIT;
	const char *error = NULL;
	link_send_data(&out, 12, "a\0b\r\n\xff", 6);
	assert_int_equal(link_frame_next(&out, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 12);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_DATA);
	assert_int_equal(g->data->data.len, 6);
	assert_memory_equal(g->data->data.data, "a\0b\r\n\xff", 6);
	link_frame_free(&g);

	/* Empty data is still a Data frame. */
	link_send_data(&out, 12, NULL, 0);
	assert_int_equal(link_frame_next(&out, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_DATA);
	assert_int_equal(g->data->data.len, 0);
	link_frame_free(&g);
	buf_free(&out);
}

static void
test_credit_and_close(void **state)
{
	struct buf out = BUF_INIT;
	const char *error = NULL;
	Portico__Frame *g = NULL;

	link_send_credit(&out, 5, UINT32_MAX);
	link_send_close(&out, 6, "idle timeout");
	link_send_close(&out, 7, NULL);

	assert_int_equal(link_frame_next(&out, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 5);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_CREDIT);
	assert_int_equal(g->credit->bytes, UINT32_MAX);
	link_frame_free(&g);

	assert_int_equal(link_frame_next(&out, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 6);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_CLOSE);
	assert_string_equal(g->close->reason, "idle timeout");
	link_frame_free(&g);

	assert_int_equal(link_frame_next(&out, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 7);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_CLOSE);
	assert_string_equal(g->close->reason, "");
	link_frame_free(&g);

	assert_int_equal(buf_used(&out), 0);
	assert_int_equal(link_frame_next(&out, MAX_FRAME, &g, &error), 0);
	assert_null(g);
	buf_free(&out);

	/* Credit through the generic path as well. */
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Credit c = PORTICO__CREDIT__INIT;
	c.bytes = 1;
	f.stream = 2;
	f.body_case = PORTICO__FRAME__BODY_CREDIT;
	f.credit = &c;
	g = round_trip(&f);
	assert_int_equal(g->credit->bytes, 1);
	link_frame_free(&g);
}

/* Three frames of different kinds, back to back. */
static void
make_stream(struct buf *out, size_t *ends, size_t *nframes)
{
	link_send_data(out, 1, "* OK ready\r\n", 12);
	ends[0] = buf_used(out);
	link_send_credit(out, 1, 4096);
	ends[1] = buf_used(out);
	link_send_close(out, 1, "bye");
	ends[2] = buf_used(out);
	*nframes = 3;
}

static void
check_stream_frame(unsigned i, Portico__Frame *g)
{
	assert_int_equal(g->stream, 1);
	switch (i) {
	case 0:
		assert_int_equal(g->body_case, PORTICO__FRAME__BODY_DATA);
		assert_int_equal(g->data->data.len, 12);
		assert_memory_equal(g->data->data.data, "* OK ready\r\n", 12);
		break;
	case 1:
		assert_int_equal(g->body_case, PORTICO__FRAME__BODY_CREDIT);
		assert_int_equal(g->credit->bytes, 4096);
		break;
	case 2:
		assert_int_equal(g->body_case, PORTICO__FRAME__BODY_CLOSE);
		assert_string_equal(g->close->reason, "bye");
		break;
	default:
		fail();
	}
}

static void
test_split_every_byte(void **state)
{
	struct buf wire = BUF_INIT;
	size_t ends[3], nframes;
	make_stream(&wire, ends, &nframes);
	const char *bytes = buf_ptr(&wire);
	size_t total = buf_used(&wire);

	/* One byte at a time: a frame appears exactly when its last byte
	   arrives, never earlier. */
	struct buf in = BUF_INIT;
	unsigned got = 0;
	for (size_t i = 0; i < total; i++) {
		Portico__Frame *g = NULL;
		const char *error = NULL;
		buf_append(&in, bytes + i, 1);
		int rc = link_frame_next(&in, MAX_FRAME, &g, &error);
		if (got < nframes && i + 1 == ends[got]) {
			assert_int_equal(rc, 1);
			check_stream_frame(got++, g);
			link_frame_free(&g);
			assert_int_equal(buf_used(&in), 0);
		} else {
			assert_int_equal(rc, 0);
			assert_null(g);
			assert_null(error);
		}
	}
	assert_int_equal(got, nframes);
	buf_free(&in);

	/* Split in two at every offset: the first piece gives the frames
	   it holds whole, the rest gives the others. */
	for (size_t at = 0; at <= total; at++) {
		Portico__Frame *g = NULL;
		const char *error = NULL;
		got = 0;
		buf_append(&in, bytes, at);
		while (link_frame_next(&in, MAX_FRAME, &g, &error) == 1) {
			check_stream_frame(got++, g);
			link_frame_free(&g);
		}
		unsigned whole = 0;
		while (whole < nframes && ends[whole] <= at)
			whole++;
		assert_int_equal(got, whole);
		buf_append(&in, bytes + at, total - at);
		int rc;
		for (;;) {
			rc = link_frame_next(&in, MAX_FRAME, &g, &error);
			if (rc != 1)
				break;
			check_stream_frame(got++, g);
			link_frame_free(&g);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(got, nframes);
		assert_int_equal(buf_used(&in), 0);
	}
	buf_free(&in);
	buf_free(&wire);
}

static void
test_two_frames_one_buffer(void **state)
{
	struct buf in = BUF_INIT;
	Portico__Frame *g = NULL;
	const char *error = NULL;
	link_send_data(&in, 4, "first", 5);
	size_t first = buf_used(&in);
	link_send_data(&in, 8, "second", 6);
	size_t both = buf_used(&in);

	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 4);
	assert_memory_equal(g->data->data.data, "first", 5);
	link_frame_free(&g);
	/* Exactly the first frame was taken. */
	assert_int_equal(buf_used(&in), both - first);

	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 8);
	assert_int_equal(g->data->data.len, 6);
	assert_memory_equal(g->data->data.data, "second", 6);
	link_frame_free(&g);
	assert_int_equal(buf_used(&in), 0);
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 0);
	buf_free(&in);
}

static void
test_too_large(void **state)
{
	struct buf in = BUF_INIT;
	Portico__Frame *g = NULL;
	const char *error = NULL;

	/* The header alone is enough to refuse. */
	buf_append(&in, "\x00\x10\x00\x01", 4);
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), -1);
	assert_string_equal(error, "frame too large");
	assert_null(g);
	buf_reset(&in);

	buf_append(&in, "\xff\xff\xff\xff", 4);
	error = NULL;
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), -1);
	assert_string_equal(error, "frame too large");
	buf_reset(&in);

	/* A real frame one byte over the limit, and at the limit. */
	static char big[70000];
	memset(big, 'x', sizeof(big));
	link_send_data(&in, 1, big, sizeof(big));
	size_t n = buf_used(&in) - 4;
	error = NULL;
	assert_int_equal(link_frame_next(&in, n - 1, &g, &error), -1);
	assert_string_equal(error, "frame too large");
	assert_int_equal(link_frame_next(&in, n, &g, &error), 1);
	assert_int_equal(g->data->data.len, sizeof(big));
	assert_memory_equal(g->data->data.data, big, sizeof(big));
	link_frame_free(&g);
	buf_free(&in);
}

static void
test_garbage(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
		/* Field 0 is invalid. */
		{ "\x00\x00\x00\x02\x00\x00", 6 },
		/* A varint that never ends. */
		{ "\x00\x00\x00\x03\x08\xff\xff", 7 },
		/* Data (field 6) claims 100 bytes, has 2. */
		{ "\x00\x00\x00\x04\x32\x64\x0a\x00", 8 },
		/* Wire type 7 does not exist. */
		{ "\x00\x00\x00\x02\x0f\x01", 6 },
		/* Random bytes. */
		{ "\x00\x00\x00\x05\xff\xff\xff\xff\xff", 9 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf in = BUF_INIT;
		Portico__Frame *g = NULL;
		const char *error = NULL;
		buf_append(&in, cases[i].bytes, cases[i].len);
		int rc = link_frame_next(&in, MAX_FRAME, &g, &error);
		if (rc != -1)
			fail_msg("case %zu: %d", i, rc);
		assert_string_equal(error, "undecodable frame");
		assert_null(g);
		buf_free(&in);
	}
}

static void
test_two_bodies(void **state)
{
	/* A Hello and then a Data in one frame: the last body wins, and
	   nothing leaks (the sanitizer build checks). */
	static const char bytes[] =
		"\x00\x00\x00\x0b"
		"\x08\x05"                 /* stream 5 */
		"\x12\x03\x0a\x01x"         /* hello { role: "x" } */
		"\x32\x02\x0a\x00";        /* data { data: "" } */
	struct buf in = BUF_INIT;
	Portico__Frame *g = NULL;
	const char *error = NULL;
	buf_append(&in, bytes, sizeof(bytes) - 1);
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 1);
	assert_int_equal(g->stream, 5);
	assert_int_equal(g->body_case, PORTICO__FRAME__BODY_DATA);
	assert_int_equal(g->data->data.len, 0);
	link_frame_free(&g);
	buf_free(&in);
}

static void
test_truncated(void **state)
{
	struct buf in = BUF_INIT;
	Portico__Frame *g = NULL;
	const char *error = NULL;

	/* Nothing, and part of a header. */
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 0);
	buf_append(&in, "\x00\x00", 2);
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 0);
	assert_int_equal(buf_used(&in), 2);
	buf_reset(&in);

	/* A whole frame but its last byte: nothing is taken. */
	link_send_close(&in, 3, "shutting down");
	size_t n = buf_used(&in);
	in.len--;
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 0);
	assert_null(g);
	assert_null(error);
	assert_int_equal(buf_used(&in), n - 1);
	in.len++;
	assert_int_equal(link_frame_next(&in, MAX_FRAME, &g, &error), 1);
	assert_string_equal(g->close->reason, "shutting down");
	link_frame_free(&g);
	buf_free(&in);

	/* link_frame_free() accepts NULL. */
	link_frame_free(&g);
	assert_null(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_ping_pong),
	    cmocka_unit_test(test_forget),
	    cmocka_unit_test(test_version_number),
	    cmocka_unit_test(test_park_frames),
	    cmocka_unit_test(test_open),
	    cmocka_unit_test(test_opened),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_data_binary),
	    cmocka_unit_test(test_credit_and_close),
	    cmocka_unit_test(test_split_every_byte),
	    cmocka_unit_test(test_two_frames_one_buffer),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_two_bodies),
	    cmocka_unit_test(test_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
