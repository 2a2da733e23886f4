/* link.c - link frame codec. */
#include "common/link.h"

#include <string.h>

void
link_frame_pack(const Portico__Frame *f, struct buf *out)
{
	size_t n = portico__frame__get_packed_size(f);
	uint8_t *p = (uint8_t *)buf_reserve(out, n + 4);
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	size_t packed = portico__frame__pack(f, p + 4);
	buf_commit(out, packed + 4);
}

int
link_frame_next(struct buf *in, size_t max_frame, Portico__Frame **frame_r,
		const char **error_r)
{
	size_t have = buf_used(in);
	if (have < 4)
		return 0;
	const uint8_t *p = (const uint8_t *)buf_ptr(in);
	uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		     (uint32_t)p[2] << 8 | p[3];
	if (n > max_frame) {
		*error_r = "frame too large";
		return -1;
	}
	if (have - 4 < n)
		return 0;
	Portico__Frame *f = portico__frame__unpack(NULL, n, p + 4);
	if (f == NULL) {
		*error_r = "undecodable frame";
		return -1;
	}
	buf_consume(in, (size_t)n + 4);
	*frame_r = f;
	return 1;
}

void
link_frame_free(Portico__Frame **frame)
{
	if (*frame != NULL)
		portico__frame__free_unpacked(*frame, NULL);
	*frame = NULL;
}

void
link_send_data(struct buf *out, uint32_t stream, const void *data, size_t len)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Data d = PORTICO__DATA__INIT;
	d.data.data = (uint8_t *)(uintptr_t)data;
	d.data.len = len;
	f.stream = stream;
	f.body_case = PORTICO__FRAME__BODY_DATA;
	f.data = &d;
	link_frame_pack(&f, out);
}

void
link_send_credit(struct buf *out, uint32_t stream, uint32_t bytes)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Credit c = PORTICO__CREDIT__INIT;
	c.bytes = bytes;
	f.stream = stream;
	f.body_case = PORTICO__FRAME__BODY_CREDIT;
	f.credit = &c;
	link_frame_pack(&f, out);
}

void
link_send_close(struct buf *out, uint32_t stream, const char *reason)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Close c = PORTICO__CLOSE__INIT;
	c.reason = (char *)(uintptr_t)(reason ? reason : "");
	f.stream = stream;
	f.body_case = PORTICO__FRAME__BODY_CLOSE;
	f.close = &c;
	link_frame_pack(&f, out);
}

void
link_send_ping(struct buf *out, uint64_t seq, int pong)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Ping p = PORTICO__PING__INIT;
	Portico__Pong q = PORTICO__PONG__INIT;
	f.stream = 0;
	if (pong) {
		q.seq = seq;
		f.body_case = PORTICO__FRAME__BODY_PONG;
		f.pong = &q;
	} else {
		p.seq = seq;
		f.body_case = PORTICO__FRAME__BODY_PING;
		f.ping = &p;
	}
	link_frame_pack(&f, out);
}

void
link_send_forget(struct buf *out, const char *mailbox_id, uint64_t age_ms)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Forget g = PORTICO__FORGET__INIT;
	g.mailbox_id = (char *)(uintptr_t)mailbox_id;
	g.age_ms = age_ms;
	f.stream = 0;
	f.body_case = PORTICO__FRAME__BODY_FORGET;
	f.forget = &g;
	link_frame_pack(&f, out);
}

unsigned
link_version_number(const char *version)
{
	size_t n = strlen(LINK_VERSION_PREFIX);
	if (version == NULL || strncmp(version, LINK_VERSION_PREFIX, n) != 0)
		return 0;
	unsigned v = 0;
	for (const char *p = version + n; *p >= '0' && *p <= '9'; p++) {
		if (v > 100000)
			return 0;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return v;
}
