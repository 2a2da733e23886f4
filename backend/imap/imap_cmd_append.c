/* imap_cmd_append.c - APPEND with MULTIAPPEND (RFC 3502) and UIDPLUS
 * (RFC 4315): all messages or none, durable before the tagged OK. */
#define _XOPEN_SOURCE 700
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/mime/mime.h"
#include "common/log.h"

struct append_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_append_args a;
	struct store_new_msg *msgs;
};

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time), day may be
 * space-padded. */
static int
parse_date_time(const char *s, int64_t *r)
{
	static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int day, year, hh, mm, ss, zone;
	char m[4], sign;
	if (strlen(s) != 26 ||
	    sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, m, &year, &hh, &mm,
		   &ss, &sign, &zone) != 8)
		return -1;
	int month = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(m, mon[i]) == 0)
			month = i;
	if (month < 0 || day < 1 || day > 31 || year < 1900 || hh > 23 ||
	    mm > 59 || ss > 60 || (sign != '+' && sign != '-') || zone > 1400 ||
	    zone % 100 > 59)
		return -1;
	struct tm tm = {0};
	tm.tm_mday = day;
	tm.tm_mon = month;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	int64_t t = (int64_t)timegm(&tm);
	int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
	*r = sign == '+' ? t - off : t + off;
	return 0;
}

static void
append_done(void *ctx, int rc, const char *err)
{
	struct append_ctx *ac = ctx;
	struct imap_cmd_ctx *cmd = ac->cmd;
	struct imap_session *is = cmd->is;
	if (rc != 0) {
		imap_store_failed(cmd, rc, err);
		return;
	}
	backend_mailbox_changed(is->s->be, ac->a.mbox_id_out);
	if (is->state == IMAP_STATE_SELECTED &&
	    is->mbox.mbox_id == ac->a.mbox_id_out)
		imap_sync(is, 1);
	if (ac->a.n == 1)
		imap_tagged(cmd, "OK", "[APPENDUID %u %u] APPEND completed",
			    ac->a.uidvalidity, ac->a.first_uid);
	else
		imap_tagged(cmd, "OK", "[APPENDUID %u %u:%u] APPEND completed",
			    ac->a.uidvalidity, ac->a.first_uid,
			    ac->a.first_uid + (uint32_t)ac->a.n - 1);
}

void
imap_cmd_append(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct arena *a = &is->cmd_pool;
	if (cmd->argc < 2) {
		imap_tagged(cmd, "BAD", "APPEND expects a mailbox and a "
					"message");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	struct append_ctx *ac = arena_zalloc(a, sizeof(*ac));
	ac->msgs = arena_zalloc(a, cmd->argc * sizeof(*ac->msgs));
	size_t n = 0;
	uint64_t limit = backend_imap_append_limit(&is->s->be->cfg);
	for (unsigned i = 1; i < cmd->argc;) {
		struct store_new_msg *m = &ac->msgs[n];
		if (cmd->args[i].type == IMAP_ARG_LIST) {
			if (imap_flags_parse(cmd, &cmd->args[i], &m->flags,
					     (const char ***)&m->keywords,
					     &m->nkeywords) < 0)
				return;
			i++;
		}
		if (i < cmd->argc && cmd->args[i].type == IMAP_ARG_STRING) {
			if (parse_date_time(cmd->args[i].str,
					    &m->internaldate) < 0) {
				imap_tagged(cmd, "BAD", "Invalid date-time");
				return;
			}
			i++;
		}
		const struct imap_arg *data = i < cmd->argc ? &cmd->args[i]
							   : NULL;
		if (data != NULL && imap_arg_is_atom(data, "UTF8") &&
		    (is->enabled & IMAP_ENABLE_UTF8) && i + 1 < cmd->argc &&
		    cmd->args[i + 1].type == IMAP_ARG_LIST &&
		    cmd->args[i + 1].count == 1 &&
		    cmd->args[i + 1].list[0].type == IMAP_ARG_LITERAL) {
			/* RFC 6855 4: APPEND ... UTF8 (~{n}...) */
			i++;
			data = &cmd->args[i].list[0];
		}
		if (data == NULL || data->type != IMAP_ARG_LITERAL) {
			imap_tagged(cmd, "BAD", "APPEND expects the message as "
						"a literal");
			return;
		}
		if (data->len == 0) {
			imap_tagged(cmd, "NO", "[CANNOT] Empty messages cannot "
					       "be stored");
			return;
		}
		if (data->len > limit) {
			imap_tagged(cmd, "NO", "[TOOBIG] Message larger than "
					       "APPENDLIMIT");
			return;
		}
		m->data = data->str;
		m->len = data->len;
		/* Parsed once, here: FETCH never parses it again. */
		struct buf meta = BUF_INIT;
		if (mime_cache_build(m->data, m->len, &meta) == 0) {
			void *copy = arena_alloc(a, buf_used(&meta));
			memcpy(copy, buf_ptr(&meta), buf_used(&meta));
			m->meta = copy;
			m->metalen = buf_used(&meta);
		}
		buf_free(&meta);
		n++;
		i++;
	}
	ac->cmd = imap_cmd_keep(cmd);
	ac->a.user_num = is->user_num;
	ac->a.mailbox = name;
	ac->a.msgs = ac->msgs;
	ac->a.n = n;
	ac->a.quota_storage = is->s->be->cfg.backend_quota_storage;
	ac->a.quota_messages = is->s->be->cfg.backend_quota_messages;
	session_store(is->s, store_op_append, &ac->a, append_done, ac, NULL);
}
