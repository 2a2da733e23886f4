/* fuzz_link.c - the link frame decoder (4-byte length + packed
 * Portico__Frame, protobuf-c).
 *
 * Arbitrary bytes go into a buffer in two pieces, as they arrive from a
 * socket, and frames are taken off the front until the decoder wants more
 * or refuses the stream.  Every frame that decodes must be self-consistent
 * (the oneof case matches its pointer, strings are terminated) and must
 * survive a re-pack: pack, decode, pack again gives the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: say which, then abort (libFuzzer saves the input). */
#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

#define MAX_FRAME (64 * 1024)

static void
check_str(const char *s)
{
	if (s == NULL)
		FAIL();
	(void)strlen(s); /* ASan finds an unterminated one */
}

static void
check_rcpts(Portico__Recipient *const *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i] == NULL)
			FAIL();
		check_str(r[i]->address);
		check_str(r[i]->mailbox_id);
		check_str(r[i]->notify);
		check_str(r[i]->orcpt);
	}
}

static void
check_frame(const Portico__Frame *f)
{
	const void *body = NULL;
	switch (f->body_case) {
	case PORTICO__FRAME__BODY__NOT_SET:
		break;
	case PORTICO__FRAME__BODY_HELLO:
		body = f->hello;
		if (f->hello != NULL) {
			check_str(f->hello->role);
			check_str(f->hello->name);
			check_str(f->hello->version);
			check_str(f->hello->imap_capabilities);
			for (size_t i = 0; i < f->hello->n_pop3_capa; i++)
				check_str(f->hello->pop3_capa[i]);
		}
		break;
	case PORTICO__FRAME__BODY_OPEN:
		body = f->open;
		if (f->open != NULL) {
			check_str(f->open->user);
			check_str(f->open->mailbox_id);
			check_str(f->open->client_addr);
			check_str(f->open->tls_cipher);
			check_str(f->open->session_id);
			check_str(f->open->tag);
		}
		break;
	case PORTICO__FRAME__BODY_OPENED:
		body = f->opened;
		break;
	case PORTICO__FRAME__BODY_REFUSED:
		body = f->refused;
		if (f->refused != NULL) {
			check_str(f->refused->code);
			check_str(f->refused->reason);
		}
		break;
	case PORTICO__FRAME__BODY_DATA:
		body = f->data;
		if (f->data != NULL && f->data->data.len > 0 &&
		    f->data->data.data == NULL)
			FAIL();
		if (f->data != NULL && f->data->data.len > MAX_FRAME)
			FAIL();
		break;
	case PORTICO__FRAME__BODY_CREDIT:
		body = f->credit;
		break;
	case PORTICO__FRAME__BODY_CLOSE:
		body = f->close;
		if (f->close != NULL)
			check_str(f->close->reason);
		break;
	case PORTICO__FRAME__BODY_SUBMIT:
		body = f->submit;
		if (f->submit != NULL) {
			check_str(f->submit->user);
			check_str(f->submit->mailbox_id);
			check_str(f->submit->mail_from);
			check_str(f->submit->client_addr);
			check_str(f->submit->session_id);
			check_str(f->submit->body);
			check_str(f->submit->envid);
			check_str(f->submit->ret);
			check_rcpts(f->submit->rcpt, f->submit->n_rcpt);
		}
		break;
	case PORTICO__FRAME__BODY_DELIVER:
		body = f->deliver;
		if (f->deliver != NULL) {
			check_str(f->deliver->mail_from);
			check_str(f->deliver->client_addr);
			check_str(f->deliver->session_id);
			check_rcpts(f->deliver->rcpt, f->deliver->n_rcpt);
		}
		break;
	case PORTICO__FRAME__BODY_END:
		body = f->end;
		break;
	case PORTICO__FRAME__BODY_DRAIN:
		body = f->drain;
		break;
	case PORTICO__FRAME__BODY_PING:
		body = f->ping;
		break;
	case PORTICO__FRAME__BODY_PONG:
		body = f->pong;
		break;
	case PORTICO__FRAME__BODY_FORGET:
		body = f->forget;
		if (f->forget != NULL)
			check_str(f->forget->mailbox_id);
		break;
	case PORTICO__FRAME__BODY_PARK:
		body = f->park;
		if (f->park != NULL) {
			check_str(f->park->mbox_name);
			/* the state is an ImapPark, read back by the backend */
			Portico__ImapPark *ip = portico__imap_park__unpack(
			    NULL, f->park->state.len, f->park->state.data);
			if (ip != NULL) {
				check_str(ip->idle_tag);
				check_str(ip->mbox_name);
				check_str(ip->client_id);
				if ((ip->n_uids > 0 && ip->uids == NULL) ||
				    (ip->n_saved > 0 && ip->saved == NULL))
					FAIL();
				portico__imap_park__free_unpacked(ip, NULL);
			}
		}
		break;
	case PORTICO__FRAME__BODY_WATCH:
		body = f->watch;
		if (f->watch != NULL) {
			check_str(f->watch->mailbox_id);
			check_str(f->watch->session_id);
			check_str(f->watch->user);
			check_str(f->watch->client_addr);
			check_str(f->watch->mbox_name);
		}
		break;
	case PORTICO__FRAME__BODY_PARKED:
		body = f->parked;
		break;
	case PORTICO__FRAME__BODY_RESULT:
		body = f->result;
		if (f->result != NULL) {
			check_str(f->result->queue_id);
			for (size_t i = 0; i < f->result->n_reply; i++) {
				if (f->result->reply[i] == NULL)
					FAIL();
				check_str(f->result->reply[i]->status);
				check_str(f->result->reply[i]->text);
			}
		}
		break;
	case _PORTICO__FRAME__BODY__CASE_IS_INT_SIZE:
		FAIL();
	}
	if (f->body_case != PORTICO__FRAME__BODY__NOT_SET && body == NULL)
		FAIL();
}

/* protobuf-c 1.4 accepts an over-long varint tag that encodes field 0
 * ("80 00") as an unknown field, and re-packs it as "00", which it then
 * refuses.  Harmless here (a received frame is never forwarded as it is),
 * so such frames are left out of the re-pack property. */
static int
has_field0(const ProtobufCMessage *m)
{
	if (m == NULL)
		return 0;
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	return 0;
}

static int
has_rcpt_field0(Portico__Recipient *const *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (has_field0(&r[i]->base))
			return 1;
	return 0;
}

static int
frame_has_field0(const Portico__Frame *f)
{
	const ProtobufCMessage *body = NULL;
	switch (f->body_case) {
	case PORTICO__FRAME__BODY__NOT_SET:
	case _PORTICO__FRAME__BODY__CASE_IS_INT_SIZE:
		break;
	case PORTICO__FRAME__BODY_HELLO:
		body = &f->hello->base;
		break;
	case PORTICO__FRAME__BODY_OPEN:
		body = &f->open->base;
		break;
	case PORTICO__FRAME__BODY_OPENED:
		body = &f->opened->base;
		break;
	case PORTICO__FRAME__BODY_REFUSED:
		body = &f->refused->base;
		break;
	case PORTICO__FRAME__BODY_DATA:
		body = &f->data->base;
		break;
	case PORTICO__FRAME__BODY_CREDIT:
		body = &f->credit->base;
		break;
	case PORTICO__FRAME__BODY_CLOSE:
		body = &f->close->base;
		break;
	case PORTICO__FRAME__BODY_SUBMIT:
		body = &f->submit->base;
		if (f->submit->n_rcpt > 0 && has_rcpt_field0(
			    f->submit->rcpt, f->submit->n_rcpt))
			return 1;
		break;
	case PORTICO__FRAME__BODY_DELIVER:
		body = &f->deliver->base;
		if (f->deliver->n_rcpt > 0 && has_rcpt_field0(
			    f->deliver->rcpt, f->deliver->n_rcpt))
			return 1;
		break;
	case PORTICO__FRAME__BODY_END:
		body = &f->end->base;
		break;
	case PORTICO__FRAME__BODY_DRAIN:
		body = &f->drain->base;
		break;
	case PORTICO__FRAME__BODY_PING:
		body = &f->ping->base;
		break;
	case PORTICO__FRAME__BODY_PONG:
		body = &f->pong->base;
		break;
	case PORTICO__FRAME__BODY_FORGET:
		body = &f->forget->base;
		break;
	case PORTICO__FRAME__BODY_PARK:
		body = &f->park->base;
		break;
	case PORTICO__FRAME__BODY_WATCH:
		body = &f->watch->base;
		break;
	case PORTICO__FRAME__BODY_PARKED:
		body = &f->parked->base;
		break;
	case PORTICO__FRAME__BODY_RESULT:
		body = &f->result->base;
		for (size_t i = 0; i < f->result->n_reply; i++)
			if (has_field0(&f->result->reply[i]->base))
				return 1;
		break;
	}
	return has_field0(&f->base) || has_field0(body);
}

static void
repack(const Portico__Frame *f)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	link_frame_pack(f, &a);
	size_t alen = buf_used(&a);
	Portico__Frame *g = NULL;
	const char *err = NULL;
	/* A frame this decoder produced re-packs within the limit only if
	   the original did; the limit here is generous. */
	int rc = link_frame_next(&a, 4 * MAX_FRAME, &g, &err);
	if (rc != 1 && frame_has_field0(f)) {
		buf_free(&a);
		return;
	}
	if (rc != 1 || buf_used(&a) != 0)
		FAIL();
	check_frame(g);
	link_frame_pack(g, &b);
	if (buf_used(&b) != alen)
		FAIL();
	struct buf c = BUF_INIT;
	link_frame_pack(f, &c);
	if (memcmp(buf_ptr(&b), buf_ptr(&c), alen) != 0)
		FAIL();
	link_frame_free(&g);
	if (g != NULL)
		FAIL();
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split = data[0] % (size);
	data++;
	size--;
	if (split > size)
		split = size;
	struct buf in = BUF_INIT;
	int dead = 0;
	for (int part = 0; part < 2 && !dead; part++) {
		if (part == 0)
			buf_append(&in, data, split);
		else
			buf_append(&in, data + split, size - split);
		for (;;) {
			size_t before = buf_used(&in);
			Portico__Frame *f = NULL;
			const char *err = NULL;
			int rc = link_frame_next(&in, MAX_FRAME, &f, &err);
			if (rc == 0) {
				if (f != NULL || buf_used(&in) != before)
					FAIL();
				break;
			}
			if (rc < 0) {
				if (err == NULL || f != NULL)
					FAIL();
				dead = 1; /* the link is closed */
				break;
			}
			if (rc != 1 || f == NULL || buf_used(&in) >= before)
				FAIL();
			check_frame(f);
			repack(f);
			link_frame_free(&f);
		}
	}
	buf_free(&in);
	return 0;
}
