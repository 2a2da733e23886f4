/* message.c - header fields and dates of the messages the transport
 * writes (Received:, delivery status notifications, the Date: and
 * Message-ID: a submission lacks). */
#include "backend/transport/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

const char *
transport_hostname(const struct config *cfg)
{
	static char host[256];
	if (cfg->transport_hostname[0] != '\0')
		return cfg->transport_hostname;
	if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	return host;
}

void
transport_date(int64_t t, char *out, size_t outsize)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	snprintf(out, outsize, "%s, %d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
transport_clean(char *out, size_t outsize, const char *s)
{
	size_t o = 0;
	for (; *s != '\0' && o + 1 < outsize; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			continue;
		out[o++] = (char)c;
	}
	out[o] = '\0';
}

void
transport_field_encoded(struct buf *out, const char *name, const char *v,
			size_t len)
{
	buf_printf(out, "%s:", name);
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0) {
		/* 45 bytes make 60 base64 characters; not within a
		   character's sequence */
		size_t n = len < 45 ? len : 45;
		while (n < len && n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
		if (n == 0)
			n = len < 45 ? len : 45;
		unsigned char enc[64];
		int el = EVP_EncodeBlock(enc, (const unsigned char *)v, (int)n);
		buf_printf(out, " =?UTF-8?B?%.*s?=", el, (const char *)enc);
		v += n;
		len -= n;
		if (len > 0)
			buf_append(out, "\r\n", 2);
	}
	buf_append(out, "\r\n", 2);
}

/* The name of the header field starting at line[0..len) ("Date" of
 * "Date: ..." or "Date : ..."), or 0 when the line is no field. */
static int
field_name(const char *line, size_t len, size_t *name_len_r)
{
	size_t n = 0;
	while (n < len && line[n] > ' ' && line[n] < 127 && line[n] != ':')
		n++;
	size_t colon = n;
	while (colon < len && (line[colon] == ' ' || line[colon] == '\t'))
		colon++; /* RFC 5322 4.5.3: obsolete space before the colon */
	if (n == 0 || colon >= len || line[colon] != ':')
		return 0;
	*name_len_r = n;
	return 1;
}

static int
name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

int
transport_submission_fields(const struct config *cfg, const char *data,
			    size_t len, struct buf *out)
{
	int has_date = 0, has_id = 0, in_trace = 1;
	size_t insert = len, i = 0;
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;
		const char *line = data + i;
		size_t l = end - i;
		if (l == 1 || (l == 2 && line[0] == '\r')) {
			/* the empty line: the header section ends */
			if (in_trace)
				insert = i;
			break;
		}
		size_t nlen;
		if (line[0] != ' ' && line[0] != '\t' &&
		    field_name(line, l, &nlen)) {
			has_date |= name_is(line, nlen, "Date");
			has_id |= name_is(line, nlen, "Message-ID");
			/* After the trace fields on top (our Received:):
			   RFC 5322 3.6 keeps them first. */
			if (in_trace && !name_is(line, nlen, "Received") &&
			    !name_is(line, nlen, "Return-Path")) {
				in_trace = 0;
				insert = i;
			}
		}
		i = end;
	}
	if (has_date && has_id)
		return 0;
	int64_t now = (int64_t)time(NULL);
	buf_reset(out);
	buf_append(out, data, insert);
	if (insert > 0 && data[insert - 1] != '\n')
		buf_append(out, "\r\n", 2); /* a last header line unended */
	if (!has_date) {
		char date[64];
		transport_date(now, date, sizeof(date));
		buf_printf(out, "Date: %s\r\n", date);
	}
	if (!has_id) {
		/* unique: the time and 96 random bits at this host (without
		   randomness, the process and a count) */
		static uint32_t count;
		unsigned char rnd[12];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			uint32_t v[3] = {(uint32_t)getpid(), ++count,
					 (uint32_t)clock()};
			memcpy(rnd, v, sizeof(rnd));
		}
		struct tm tm;
		time_t tt = (time_t)now;
		gmtime_r(&tt, &tm);
		buf_printf(out, "Message-ID: <%04d%02d%02d%02d%02d%02d.",
			   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			   tm.tm_hour, tm.tm_min, tm.tm_sec);
		for (size_t k = 0; k < sizeof(rnd); k++)
			buf_printf(out, "%02x", rnd[k]);
		buf_printf(out, "@%s>\r\n", transport_hostname(cfg));
	}
	buf_append(out, data + insert, len - insert);
	return 1;
}
