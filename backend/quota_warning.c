/* quota_warning.c - the message a user finds in the INBOX as the mailbox
 * fills up (backend.quota_warnings).  The store finds the crossing in the
 * transaction that made the use grow and stores the message there
 * (store_quota_warner); this file gives it the levels and writes the
 * message.  Both run in the store writer's thread: what they read is an
 * immutable snapshot of the settings, replaced at a reload (the older
 * ones are kept until exit, a few hundred bytes each). */
#include "backend/backend.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/imap/imap.h"
#include "backend/mime/mime.h"
#include "backend/transport/transport.h"
#include "common/log.h"

struct qw_conf {
	unsigned levels[QUOTA_WARNING_LEVELS]; /* ascending */
	unsigned n;
	char from[320];
	char host[256];
	/* backend.quota_warning_file: CRLF lines, header fields, an empty
	   line, the body (NULL: the built-in message) */
	char *tmpl;
	size_t tmpl_len;
	int tmpl_typed; /* has its own Content-Type */
	struct qw_conf *older;
};

#define QW_TEMPLATE_MAX 16384

static const char *const qw_names[] = {"percent",      "level",
				       "storage_used", "storage_limit",
				       "messages",     "messages_limit"};

/* The placeholder at p ("%{name}", len bytes at most): its index, or -1;
 * *n_r its length. */
static int
qw_placeholder(const char *p, size_t len, size_t *n_r)
{
	if (len < 3 || p[0] != '%' || p[1] != '{')
		return -1;
	const char *end = memchr(p + 2, '}', len - 2);
	if (end == NULL)
		return -1;
	size_t n = (size_t)(end - (p + 2));
	for (size_t i = 0; i < sizeof(qw_names) / sizeof(qw_names[0]); i++)
		if (strlen(qw_names[i]) == n &&
		    memcmp(qw_names[i], p + 2, n) == 0) {
			*n_r = n + 3;
			return (int)i;
		}
	return -1;
}

/* Fields the server writes itself. */
static const char *const qw_own_fields[] = {
    "From",           "To",          "Date", "Message-ID", "Return-Path",
    "Auto-Submitted", "MIME-Version"};

int
quota_warning_file_load(const char *path, char **out_r, size_t *len_r,
			int *typed_r, const char **error_r)
{
	static _Thread_local char msg[600];
	*out_r = NULL;
	*len_r = 0;
	*typed_r = 0;
	if (path[0] == '\0')
		return 0;
#define QW_FAIL(...)                                                           \
	do {                                                                   \
		int off_ = snprintf(                                           \
		    msg, sizeof(msg),                                          \
		    "backend.quota_warning_file \"%.256s\": ", path);          \
		snprintf(msg + off_, sizeof(msg) - (size_t)off_, __VA_ARGS__); \
		*error_r = msg;                                                \
		goto fail;                                                     \
	} while (0)
	struct buf raw = BUF_INIT, b = BUF_INIT;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		QW_FAIL("%s", strerror(errno));
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0 &&
	       buf_used(&raw) <= QW_TEMPLATE_MAX)
		buf_append(&raw, chunk, got);
	int bad = ferror(f);
	fclose(f);
	if (bad)
		QW_FAIL("cannot be read");
	if (buf_used(&raw) > QW_TEMPLATE_MAX)
		QW_FAIL("larger than 16 KB");
	const char *t = buf_ptr(&raw);
	size_t tl = buf_used(&raw);
	if (tl == 0 || memchr(t, '\0', tl) != NULL || !imap_utf8_valid(t, tl))
		QW_FAIL("not UTF-8 text");
	/* line by line: CRLF ends, the header's form, the placeholders */
	int in_header = 1, subject = 0, lineno = 0;
	for (size_t at = 0; at < tl;) {
		const char *nl = memchr(t + at, '\n', tl - at);
		size_t end = nl != NULL ? (size_t)(nl - t) : tl;
		size_t ll = end - at;
		if (ll > 0 && t[at + ll - 1] == '\r')
			ll--;
		const char *line = t + at;
		lineno++;
		if (ll > 900)
			QW_FAIL("line %d is longer than 900 bytes", lineno);
		if (in_header && ll == 0) {
			in_header = 0;
		} else if (in_header && (line[0] == ' ' || line[0] == '\t')) {
			if (lineno == 1)
				QW_FAIL("line 1 continues no header field");
		} else if (in_header) {
			const char *colon = memchr(line, ':', ll);
			size_t nlen = colon != NULL ? (size_t)(colon - line)
						    : 0;
			for (size_t i = 0; i < nlen; i++)
				if ((unsigned char)line[i] <= ' ' ||
				    (unsigned char)line[i] >= 0x7f)
					nlen = 0;
			if (nlen == 0)
				QW_FAIL("line %d is not a header field "
					"(Name: value), and no empty line "
					"came before it",
					lineno);
			for (size_t i = 0; i < sizeof(qw_own_fields) /
						   sizeof(qw_own_fields[0]);
			     i++)
				if (strlen(qw_own_fields[i]) == nlen &&
				    strncasecmp(qw_own_fields[i], line, nlen) ==
					0)
					QW_FAIL(
					    "%.*s: is the server's to write",
					    (int)nlen, line);
			subject |= nlen == 7 &&
				   strncasecmp(line, "Subject", 7) == 0;
			*typed_r |= nlen == 12 &&
				    strncasecmp(line, "Content-Type", 12) == 0;
		}
		for (size_t i = 0; i + 1 < ll; i++) {
			size_t n;
			if (i + 2 < ll && line[i] == '%' &&
			    line[i + 1] == '%' && line[i + 2] == '{') {
				i += 2; /* "%%{": "%{" as it is */
				continue;
			}
			if (line[i] != '%' || line[i + 1] != '{')
				continue;
			if (qw_placeholder(line + i, ll - i, &n) < 0)
				QW_FAIL("line %d: an unknown placeholder "
					"(%%{percent}, %%{level}, "
					"%%{storage_used}, %%{storage_limit}, "
					"%%{messages}, %%{messages_limit})",
					lineno);
			i += n - 1;
		}
		buf_append(&b, line, ll);
		buf_append(&b, "\r\n", 2);
		at = nl != NULL ? end + 1 : tl;
	}
	if (in_header)
		QW_FAIL("no empty line after the header fields");
	if (!subject)
		QW_FAIL("no Subject: field");
#undef QW_FAIL
	buf_free(&raw);
	buf_append(&b, "", 1);
	*len_r = buf_used(&b) - 1;
	*out_r = strdup(buf_ptr(&b));
	buf_free(&b);
	if (*out_r == NULL)
		abort();
	return 0;
fail:
	buf_free(&raw);
	buf_free(&b);
	*typed_r = 0;
	return -1;
}

static _Atomic(struct qw_conf *) qw_current;

int
quota_warnings_parse(const char *s, unsigned levels[QUOTA_WARNING_LEVELS],
		     unsigned *n_r, const char **error_r)
{
	static char msg[160];
	unsigned n = 0;
	for (const char *p = s;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		size_t len = strcspn(p, " \t,");
		unsigned v = 0;
		size_t i = 0;
		while (i < len && i < 4 && p[i] >= '0' && p[i] <= '9')
			v = v * 10 + (unsigned)(p[i++] - '0');
		if (i < len && p[i] == '%')
			i++;
		if (i == 0 || i != len || v < 1 || v > 100) {
			snprintf(msg, sizeof(msg),
				 "backend.quota_warnings: '%.*s' is not a "
				 "percentage from 1 to 100",
				 (int)(len > 32 ? 32 : len), p);
			*error_r = msg;
			return -1;
		}
		if (n == QUOTA_WARNING_LEVELS) {
			*error_r = "backend.quota_warnings: more than 8 levels";
			return -1;
		}
		/* kept ascending, each once */
		unsigned at = 0;
		while (at < n && levels[at] < v)
			at++;
		if (at < n && levels[at] == v) {
			p += len;
			continue;
		}
		memmove(levels + at + 1, levels + at,
			(n - at) * sizeof(*levels));
		levels[at] = v;
		n++;
		p += len;
	}
	*n_r = n;
	return 0;
}

int
quota_warning_from_check(const char *from, const char **error_r)
{
	const char *at = strrchr(from, '@');
	if (from[0] == '\0')
		return 0;
	for (const char *p = from; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    strchr("<>()[]\\,;:\"", *p) != NULL) {
			*error_r = "backend.quota_warning_from: an address "
				   "such as postmaster@example.com";
			return -1;
		}
	if (at == NULL || at == from || at[1] == '\0' || strlen(from) > 254) {
		*error_r = "backend.quota_warning_from: an address such as "
			   "postmaster@example.com";
		return -1;
	}
	return 0;
}

static unsigned
qw_level(void *ctx, unsigned percent)
{
	(void)ctx;
	const struct qw_conf *c = atomic_load(&qw_current);
	unsigned level = 0;
	for (unsigned i = 0; c != NULL && i < c->n; i++)
		if (c->levels[i] <= percent)
			level = c->levels[i];
	return level;
}

/* "9.5 MB" (units of 1024), "512 bytes" */
static void
qw_size(uint64_t v, char *out, size_t outsize)
{
	static const char *const units[] = {"KB", "MB", "GB", "TB"};
	if (v < 1024) {
		snprintf(out, outsize, "%llu bytes", (unsigned long long)v);
		return;
	}
	double d = (double)v / 1024;
	unsigned u = 0;
	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	snprintf(out, outsize, d < 10 ? "%.1f %s" : "%.0f %s", d, units[u]);
}

/* The rendered template p (len bytes) to out, its Subject: encoded when
 * it is not ASCII (folded lines joined first). */
static void
qw_encode_subject(const char *p, size_t len, struct buf *out)
{
	const char *blank = memmem(p, len, "\r\n\r\n", 4);
	const char *hend = blank != NULL ? blank + 2 : p;
	for (const char *q = p; q < hend;) {
		/* one field: its line and the folded ones after it */
		const char *e = q;
		do {
			e = (const char *)memchr(e, '\n', (size_t)(hend - e)) +
			    1;
		} while (e < hend && (*e == ' ' || *e == '\t'));
		int ascii = 1;
		for (const char *r = q; r < e; r++)
			ascii &= (unsigned char)*r < 0x80;
		if (!ascii && e - q > 8 && strncasecmp(q, "Subject:", 8) == 0) {
			struct buf v = BUF_INIT;
			for (const char *r = q + 8; r < e; r++)
				if (*r != '\r' && *r != '\n')
					buf_append(&v, r, 1);
			transport_field_encoded(out, "Subject", buf_ptr(&v),
						buf_used(&v));
			buf_free(&v);
		} else {
			buf_append(out, q, (size_t)(e - q));
		}
		q = e;
	}
	buf_append(out, hend, (size_t)(p + len - hend));
}

/* The template with its placeholders replaced. */
static void
qw_render(const struct qw_conf *c, const struct store_quota_warning *w,
	  struct buf *msg)
{
	char v[6][32];
	snprintf(v[0], sizeof(v[0]), "%u", w->percent);
	snprintf(v[1], sizeof(v[1]), "%u", w->level);
	if (w->qsize != 0) {
		qw_size(w->size, v[2], sizeof(v[2]));
		qw_size(w->qsize, v[3], sizeof(v[3]));
	} else {
		snprintf(v[2], sizeof(v[2]), "-");
		snprintf(v[3], sizeof(v[3]), "-");
	}
	snprintf(v[4], sizeof(v[4]), "%llu", (unsigned long long)w->messages);
	if (w->qmsgs != 0)
		snprintf(v[5], sizeof(v[5]), "%llu",
			 (unsigned long long)w->qmsgs);
	else
		snprintf(v[5], sizeof(v[5]), "-");
	const char *t = c->tmpl;
	size_t start = 0;
	for (size_t i = 0; i < c->tmpl_len; i++) {
		size_t n;
		if (i + 2 < c->tmpl_len && t[i] == '%' && t[i + 1] == '%' &&
		    t[i + 2] == '{') {
			/* "%%{" is "%{" itself */
			buf_append(msg, t + start, i - start);
			start = i + 1;
			i += 2;
			continue;
		}
		int k = t[i] == '%' ? qw_placeholder(t + i, c->tmpl_len - i, &n)
				    : -1;
		if (k < 0)
			continue;
		buf_append(msg, t + start, i - start);
		buf_append(msg, v[k], strlen(v[k]));
		i += n - 1;
		start = i + 1;
	}
	buf_append(msg, t + start, c->tmpl_len - start);
}

static void
qw_build(void *ctx, const struct store_quota_warning *w, struct buf *msg,
	 struct buf *meta)
{
	(void)ctx;
	const struct qw_conf *c = atomic_load(&qw_current);
	char date[64], used[32], limit[32];
	int64_t now = (int64_t)time(NULL);
	transport_date(now, date, sizeof(date));
	buf_printf(msg, "Return-Path: <>\r\n");
	if (c->from[0] != '\0')
		buf_printf(msg, "From: Mail System <%s>\r\n", c->from);
	else
		buf_printf(msg, "From: Mail System <postmaster@%s>\r\n",
			   c->host);
	buf_printf(msg, "To: undisclosed-recipients:;\r\n");
	if (c->tmpl != NULL) {
		buf_printf(msg, "Date: %s\r\n", date);
		buf_printf(msg, "Message-ID: <quota.%llu.%u.%lld@%s>\r\n",
			   (unsigned long long)w->user_num, w->level,
			   (long long)now, c->host);
		buf_printf(msg, "Auto-Submitted: auto-generated\r\n"
				"MIME-Version: 1.0\r\n");
		if (!c->tmpl_typed)
			buf_printf(msg, "Content-Type: text/plain; "
					"charset=utf-8\r\n"
					"Content-Transfer-Encoding: 8bit\r\n");
		struct buf t = BUF_INIT;
		qw_render(c, w, &t);
		qw_encode_subject(buf_ptr(&t), buf_used(&t), msg);
		buf_free(&t);
		mime_cache_build(buf_ptr(msg), buf_used(msg), meta);
		return;
	}
	if (w->percent >= 100)
		buf_printf(msg, "Subject: Your mailbox is full\r\n");
	else
		buf_printf(msg, "Subject: Your mailbox is %u%% full\r\n",
			   w->percent);
	buf_printf(msg, "Date: %s\r\n", date);
	buf_printf(msg, "Message-ID: <quota.%llu.%u.%lld@%s>\r\n",
		   (unsigned long long)w->user_num, w->level, (long long)now,
		   c->host);
	buf_printf(msg, "Auto-Submitted: auto-generated\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=us-ascii\r\n"
			"Content-Transfer-Encoding: 7bit\r\n\r\n");
	buf_printf(msg, "Your mailbox has reached %u%% of its limit:\r\n\r\n",
		   w->percent);
	if (w->qsize != 0) {
		qw_size(w->size, used, sizeof(used));
		qw_size(w->qsize, limit, sizeof(limit));
		buf_printf(msg, "  storage   %s of %s\r\n", used, limit);
	}
	if (w->qmsgs != 0)
		buf_printf(msg, "  messages  %llu of %llu\r\n",
			   (unsigned long long)w->messages,
			   (unsigned long long)w->qmsgs);
	buf_printf(msg,
		   "\r\nWhen it is full, new mail for you is refused and its "
		   "senders\r\nare told so.  Delete the messages you no "
		   "longer need, empty\r\nthe Trash, or ask your mail "
		   "administrator for more room.\r\n");
	mime_cache_build(buf_ptr(msg), buf_used(msg), meta);
}

static const struct store_quota_warner qw_warner = {qw_level, qw_build, NULL};

/* An INBOX that received a warning (the store notes nothing else). */
static void
qw_changed(void *arg, uint64_t mbox_id)
{
	struct backend *be = arg;
	be->quota_warnings++;
	backend_mailbox_changed(be, mbox_id);
}

void
quota_warnings_reload(const struct config *cfg)
{
	struct qw_conf *c = calloc(1, sizeof(*c));
	const char *err;
	if (c == NULL)
		abort();
	if (quota_warnings_parse(cfg->backend_quota_warnings, c->levels, &c->n,
				 &err) < 0)
		c->n = 0; /* the configuration check refused it already */
	snprintf(c->from, sizeof(c->from), "%s", cfg->backend_quota_warning_from);
	snprintf(c->host, sizeof(c->host), "%s", transport_hostname(cfg));
	if (quota_warning_file_load(cfg->backend_quota_warning_file, &c->tmpl,
				    &c->tmpl_len, &c->tmpl_typed, &err) < 0)
		/* gone since the check: the built-in message */
		log_error("quota warnings: %s; the built-in message is used",
			  err);
	c->older = atomic_exchange(&qw_current, c);
}

void
quota_warnings_start(struct backend *be)
{
	quota_warnings_reload(&be->cfg);
	store_quota_warner_set(be->store, &qw_warner);
}

void
quota_warnings_hook(struct backend *be)
{
	store_writer_changed_hook(be->store, qw_changed, be);
}

void
quota_warnings_free(void)
{
	struct qw_conf *c = atomic_exchange(&qw_current, NULL);
	while (c != NULL) {
		struct qw_conf *older = c->older;
		free(c->tmpl);
		free(c);
		c = older;
	}
}
