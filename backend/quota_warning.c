/* quota_warning.c - the message a user finds in the INBOX as the mailbox
 * fills up (backend.quota_warnings).  The store finds the crossing in the
 * transaction that made the use grow and stores the message there
 * (store_quota_warner); this file gives it the levels and writes the
 * message.  Both run in the store writer's thread: what they read is an
 * immutable snapshot of the settings, replaced at a reload (the older
 * ones are kept until exit, a few hundred bytes each). */
#include "backend/backend.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/mime/mime.h"
#include "backend/transport/transport.h"
#include "common/log.h"

struct qw_conf {
	unsigned levels[QUOTA_WARNING_LEVELS]; /* ascending */
	unsigned n;
	char from[320];
	char host[256];
	struct qw_conf *older;
};

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
		free(c);
		c = older;
	}
}
