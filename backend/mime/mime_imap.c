/* mime_imap.c - ENVELOPE, BODY and BODYSTRUCTURE from the blob.
 *
 * Written the way Dovecot writes them (imap-envelope.c,
 * imap-bodystructure.c, imap-quote.c): header values as they are, a text
 * part without charset gets ("charset" "us-ascii"), a missing
 * Content-Transfer-Encoding is "7bit", Sender and Reply-To default to
 * From, Subject and display names are cleaned of runs of white space.
 */
#include "backend/mime/mime_private.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

#define QUOTED_MAX_ESCAPES 4

#define EMPTY_BODY                                                        \
	"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
#define EMPTY_BODYSTRUCTURE                                               \
	"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 " \
	"NIL NIL NIL NIL)"

/* -- strings -------------------------------------------------------------- */

static int
needs_literal(const char *s, size_t len)
{
	unsigned int escapes = 0;
	if (len > MIME_QUOTED_MAX)
		return 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			if (escapes++ >= QUOTED_MAX_ESCAPES)
				return 1;
		} else if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80) {
			return 1;
		}
	}
	return 0;
}

static void
literal(struct buf *out, const char *s, size_t len)
{
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, s, len);
}

void
mime_imap_string(struct buf *out, const char *s, size_t len)
{
	if (needs_literal(s, len)) {
		literal(out, s, len);
		return;
	}
	buf_append(out, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			buf_append(out, s + start, i - start);
			buf_append(out, "\\", 1);
			start = i;
		}
	}
	buf_append(out, s + start, len - start);
	buf_append(out, "\"", 1);
}

void
mime_imap_nstring(struct buf *out, const char *s, size_t len)
{
	if (s == NULL)
		buf_append(out, "NIL", 3);
	else
		mime_imap_string(out, s, len);
}

/* nstring with CR and LF removed, a space put where a line break joined
 * two words. */
static void
nstring_nolf(struct buf *out, const char *s, size_t len)
{
	if (s == NULL || (memchr(s, '\r', len) == NULL &&
			  memchr(s, '\n', len) == NULL)) {
		mime_imap_nstring(out, s, len);
		return;
	}
	struct buf tmp = BUF_INIT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\r' && s[i] != '\n') {
			buf_append(&tmp, s + i, 1);
		} else if (i + 1 < len && s[i + 1] != ' ' && s[i + 1] != '\t' &&
			   s[i + 1] != '\r' && s[i + 1] != '\n') {
			buf_append(&tmp, " ", 1);
		}
	}
	if (buf_used(&tmp) == 0)
		buf_append(out, "\"\"", 2);
	else
		mime_imap_string(out, buf_ptr(&tmp), buf_used(&tmp));
	buf_free(&tmp);
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Subject and display names: white space runs made one space, leading and
 * trailing white space dropped; written as a literal when anything had to
 * change (Dovecot's imap_append_string_for_humans()). */
static void
string_for_humans(struct buf *out, const char *s, size_t len)
{
	size_t remove = 0, i;
	int prefix = 1, last_lwsp = 1, modify = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0') {
			last_lwsp = 0;
			modify = 1;
		} else if (is_space(c)) {
			if (c != ' ')
				modify = 1;
			if (last_lwsp) {
				modify = 1;
				remove++;
			}
			last_lwsp = 1;
		} else {
			if (c == '"' || c == '\\' || c >= 0x80)
				modify = 1;
			last_lwsp = 0;
		}
		if (!last_lwsp)
			prefix = 0;
	}
	if (last_lwsp && i > 0 && !prefix) {
		modify = 1;
		remove++;
	}
	if (!modify) {
		if (len > MIME_QUOTED_MAX) {
			literal(out, s, len);
			return;
		}
		buf_append(out, "\"", 1);
		buf_append(out, s, len);
		buf_append(out, "\"", 1);
		return;
	}
	if (len == remove) {
		buf_append(out, "\"\"", 2);
		return;
	}
	buf_printf(out, "{%zu}\r\n", len - remove);
	last_lwsp = 1;
	prefix = 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0') {
			buf_append(out, "\x80", 1);
			last_lwsp = 0;
		} else if (is_space(c)) {
			if (!last_lwsp)
				buf_append(out, " ", 1);
			last_lwsp = 1;
		} else {
			buf_append(out, s + i, 1);
			last_lwsp = 0;
		}
		if (!last_lwsp)
			prefix = 0;
	}
	if (last_lwsp && i > 0 && !prefix)
		out->len--; /* the trailing space */
}

/* -- ENVELOPE ----------------------------------------------------------------- */

static void
str_ref(const struct mime_msg *m, struct buf *out, uint32_t ref, int nolf)
{
	size_t len;
	const char *s = mime_str(m, ref, &len);
	if (nolf)
		nstring_nolf(out, s, len);
	else
		mime_imap_nstring(out, s, len);
}

/* The date, In-Reply-To and Message-ID of the envelope: the field's value
 * unfolded (RFC 5322 2.2.3), without the white space around it. */
static void
str_ref_unfolded(const struct mime_msg *m, struct buf *out, uint32_t ref)
{
	size_t len;
	const char *s = mime_str(m, ref, &len);
	while (s != NULL && len > 0 && is_space((unsigned char)s[0])) {
		s++;
		len--;
	}
	while (s != NULL && len > 0 && is_space((unsigned char)s[len - 1]))
		len--;
	nstring_nolf(out, s, len);
}

static void
addr_list(const struct mime_msg *m, struct buf *out, uint32_t first,
	  uint32_t n)
{
	if (n == 0) {
		buf_append(out, "NIL", 3);
		return;
	}
	buf_append(out, "(", 1);
	for (uint32_t i = first; i < first + n; i++) {
		size_t len;
		const char *name = mime_str(m, mime_aw(m, i, A_NAME), &len);
		buf_append(out, "(", 1);
		if (name == NULL)
			buf_append(out, "NIL", 3);
		else
			string_for_humans(out, name, len);
		buf_append(out, " ", 1);
		str_ref(m, out, mime_aw(m, i, A_ROUTE), 0);
		buf_append(out, " ", 1);
		str_ref(m, out, mime_aw(m, i, A_MAILBOX), 0);
		buf_append(out, " ", 1);
		str_ref(m, out, mime_aw(m, i, A_DOMAIN), 0);
		buf_append(out, ")", 1);
	}
	buf_append(out, ")", 1);
}

/* The envelope fields, without the parentheses around them. */
static void
envelope(const struct mime_msg *m, uint32_t e, struct buf *out)
{
	uint32_t first[ENV_ADDR_COUNT], n[ENV_ADDR_COUNT];
	for (int f = 0; f < ENV_ADDR_COUNT; f++) {
		first[f] = mime_ew(m, e, E_ADDRS + 2 * f);
		n[f] = mime_ew(m, e, E_ADDRS + 2 * f + 1);
	}
	/* Sender and Reply-To default to From */
	for (int f = ENV_SENDER; f <= ENV_REPLY_TO; f++) {
		if (n[f] == 0) {
			first[f] = first[ENV_FROM];
			n[f] = n[ENV_FROM];
		}
	}

	str_ref_unfolded(m, out, mime_ew(m, e, E_DATE));
	buf_append(out, " ", 1);
	size_t len;
	const char *subject = mime_str(m, mime_ew(m, e, E_SUBJECT), &len);
	if (subject == NULL)
		buf_append(out, "NIL", 3);
	else
		string_for_humans(out, subject, len);
	for (int f = 0; f < ENV_ADDR_COUNT; f++) {
		buf_append(out, " ", 1);
		addr_list(m, out, first[f], n[f]);
	}
	buf_append(out, " ", 1);
	str_ref_unfolded(m, out, mime_ew(m, e, E_IN_REPLY_TO));
	buf_append(out, " ", 1);
	str_ref_unfolded(m, out, mime_ew(m, e, E_MESSAGE_ID));
}

void
mime_imap_envelope(const struct mime_msg *m, struct buf *out)
{
	buf_append(out, "(", 1);
	envelope(m, mime_pw(m, 0, P_ENV), out);
	buf_append(out, ")", 1);
}

/* -- BODY / BODYSTRUCTURE ----------------------------------------------------- */

static int
ref_is(const struct mime_msg *m, uint32_t ref, const char *want)
{
	size_t len;
	const char *s = mime_str(m, ref, &len);
	return s != NULL && len == strlen(want) && strcasecmp(s, want) == 0;
}

static void
params(const struct mime_msg *m, struct buf *out, uint32_t first, uint32_t n,
       int default_charset)
{
	if (n == 0 && !default_charset) {
		buf_append(out, "NIL", 3);
		return;
	}
	int seen_charset = 0;
	buf_append(out, "(", 1);
	for (uint32_t i = 0; i < n; i++) {
		size_t klen, vlen;
		const char *k = mime_str(m, mime_ref(m, first + 2 * i), &klen);
		const char *v =
			mime_str(m, mime_ref(m, first + 2 * i + 1), &vlen);
		if (i > 0)
			buf_append(out, " ", 1);
		if (k == NULL)
			k = "";
		if (v == NULL)
			v = "";
		if (klen == 7 && strcasecmp(k, "charset") == 0)
			seen_charset = 1;
		mime_imap_string(out, k, klen);
		buf_append(out, " ", 1);
		mime_imap_string(out, v, vlen);
	}
	if (default_charset && !seen_charset) {
		if (n > 0)
			buf_append(out, " ", 1);
		buf_append(out, "\"charset\" \"us-ascii\"", 20);
	}
	buf_append(out, ")", 1);
}

/* disposition, language, location */
static void
ext_common(const struct mime_msg *m, uint32_t i, struct buf *out)
{
	size_t len;
	const char *disp = mime_str(m, mime_pw(m, i, P_DISP), &len);
	buf_append(out, " ", 1);
	if (disp == NULL) {
		buf_append(out, "NIL", 3);
	} else {
		buf_append(out, "(", 1);
		mime_imap_string(out, disp, len);
		buf_append(out, " ", 1);
		params(m, out, mime_pw(m, i, P_DISP_PARAMS),
		       mime_pw(m, i, P_DISP_NPARAMS), 0);
		buf_append(out, ")", 1);
	}

	uint32_t nlangs = mime_pw(m, i, P_NLANGS);
	uint32_t langs = mime_pw(m, i, P_LANGS);
	buf_append(out, " ", 1);
	if (nlangs == 0) {
		buf_append(out, "NIL", 3);
	} else {
		buf_append(out, "(", 1);
		for (uint32_t k = 0; k < nlangs; k++) {
			const char *l = mime_str(m, mime_ref(m, langs + k),
						 &len);
			if (k > 0)
				buf_append(out, " ", 1);
			mime_imap_string(out, l != NULL ? l : "", len);
		}
		buf_append(out, ")", 1);
	}
	buf_append(out, " ", 1);
	str_ref(m, out, mime_pw(m, i, P_LOCATION), 1);
}

static void write_part(const struct mime_msg *m, uint32_t i, struct buf *out,
		       int ext);

static void
write_children(const struct mime_msg *m, uint32_t child, struct buf *out,
	       int ext)
{
	for (; child != MIME_NONE; child = mime_pw(m, child, P_NEXT)) {
		buf_append(out, "(", 1);
		write_part(m, child, out, ext);
		buf_append(out, ")", 1);
	}
}

static void
write_multipart(const struct mime_msg *m, uint32_t i, struct buf *out,
		int ext)
{
	uint32_t child = mime_pw(m, i, P_CHILD);
	if (child == MIME_NONE)
		buf_append_str(out, ext ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
	else
		write_children(m, child, out, ext);

	size_t len;
	const char *sub = mime_str(m, mime_pw(m, i, P_SUBTYPE), &len);
	buf_append(out, " ", 1);
	if (sub == NULL)
		buf_append_str(out, "\"x-unknown\"");
	else
		mime_imap_string(out, sub, len);
	if (!ext)
		return;
	buf_append(out, " ", 1);
	params(m, out, mime_pw(m, i, P_CT_PARAMS), mime_pw(m, i, P_CT_NPARAMS),
	       0);
	ext_common(m, i, out);
}

static void
write_leaf(const struct mime_msg *m, uint32_t i, struct buf *out, int ext)
{
	uint32_t flags = mime_pw(m, i, P_FLAGS);
	uint32_t type = mime_pw(m, i, P_TYPE), sub = mime_pw(m, i, P_SUBTYPE);
	uint32_t ct_params = mime_pw(m, i, P_CT_PARAMS);
	uint32_t n_ct_params = mime_pw(m, i, P_CT_NPARAMS);
	int text;

	if (flags & MIME_PART_MESSAGE) {
		buf_append_str(out, flags & MIME_PART_GLOBAL ?
					    "\"message\" \"global\"" :
					    "\"message\" \"rfc822\"");
		text = 0;
	} else if (type == 0 ||
		   ((flags & MIME_PART_OVERFLOW) &&
		    (ref_is(m, type, "multipart") ||
		     ref_is(m, type, "message")))) {
		/* no Content-Type, or a container we did not open */
		buf_append_str(out, "\"text\" \"plain\"");
		text = 1;
		if (type != 0)
			n_ct_params = 0;
	} else {
		size_t tlen, slen;
		const char *t = mime_str(m, type, &tlen);
		const char *s = mime_str(m, sub, &slen);
		text = ref_is(m, type, "text");
		mime_imap_string(out, t, tlen);
		buf_append(out, " ", 1);
		mime_imap_string(out, s != NULL ? s : "", slen);
	}

	buf_append(out, " ", 1);
	params(m, out, ct_params, n_ct_params, text);
	buf_append(out, " ", 1);
	str_ref(m, out, mime_pw(m, i, P_ID), 1);
	buf_append(out, " ", 1);
	str_ref(m, out, mime_pw(m, i, P_DESC), 1);
	buf_append(out, " ", 1);
	if (mime_pw(m, i, P_CTE) != 0)
		str_ref(m, out, mime_pw(m, i, P_CTE), 0);
	else
		buf_append(out, "\"7bit\"", 6);
	buf_printf(out, " %" PRIu64, mime_body_size(m, i));

	if (text) {
		buf_printf(out, " %" PRIu32, mime_pw(m, i, P_LINES));
	} else if (flags & MIME_PART_MESSAGE) {
		uint32_t child = mime_pw(m, i, P_CHILD);
		buf_append(out, " (", 2);
		envelope(m, mime_pw(m, child, P_ENV), out);
		buf_append(out, ") ", 2);
		write_children(m, child, out, ext);
		buf_printf(out, " %" PRIu32, mime_pw(m, i, P_LINES));
	}
	if (!ext)
		return;
	buf_append(out, " ", 1);
	str_ref(m, out, mime_pw(m, i, P_MD5), 1);
	ext_common(m, i, out);
}

static void
write_part(const struct mime_msg *m, uint32_t i, struct buf *out, int ext)
{
	if (mime_pw(m, i, P_FLAGS) & MIME_PART_MULTIPART)
		write_multipart(m, i, out, ext);
	else
		write_leaf(m, i, out, ext);
}

void
mime_imap_body(const struct mime_msg *m, struct buf *out)
{
	buf_append(out, "(", 1);
	write_part(m, 0, out, 0);
	buf_append(out, ")", 1);
}

void
mime_imap_bodystructure(const struct mime_msg *m, struct buf *out)
{
	buf_append(out, "(", 1);
	write_part(m, 0, out, 1);
	buf_append(out, ")", 1);
}
