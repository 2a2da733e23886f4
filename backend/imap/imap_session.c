/* imap_session.c - IMAP session on the backend: input, dispatch, replies. */
#include "backend/imap/imap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/metrics.h"

static void imap_cmd_count(const struct imap_cmd_ctx *cmd,
			   const char *status);

#include "common/log.h"
#include "common/protolog.h"

/* clang-format off */
static const struct imap_cmd imap_cmds[] = {
	{ "CAPABILITY",  imap_cmd_capability,  IMAP_F_ANY },
	{ "NOOP",        imap_cmd_noop,        IMAP_F_ANY },
	{ "ID",          imap_cmd_id,          IMAP_F_ANY, "ID" },
	{ "ENABLE",      imap_cmd_enable,      IMAP_F_NO_SYNC, "ENABLE" },
	{ "NAMESPACE",   imap_cmd_namespace,   IMAP_F_ANY, "NAMESPACE" },
	{ "CHECK",       imap_cmd_check,       IMAP_F_SELECTED },
	{ "COMPRESS",    imap_cmd_compress,    IMAP_F_NO_SYNC, "COMPRESS" },
	{ "SELECT",      imap_cmd_select,      IMAP_F_NO_SYNC },
	{ "EXAMINE",     imap_cmd_examine,     IMAP_F_NO_SYNC },
	{ "CLOSE",       imap_cmd_close,       IMAP_F_SELECTED | IMAP_F_NO_SYNC },
	{ "UNSELECT",    imap_cmd_unselect,    IMAP_F_SELECTED | IMAP_F_NO_SYNC,
	  "UNSELECT" },
	{ "STATUS",      imap_cmd_status,      IMAP_F_ANY },
	{ "LOGOUT",      imap_cmd_logout,      IMAP_F_NO_SYNC },
	{ "CREATE",      imap_cmd_create,      IMAP_F_ANY },
	{ "DELETE",      imap_cmd_delete,      IMAP_F_ANY },
	{ "RENAME",      imap_cmd_rename,      IMAP_F_ANY },
	{ "SUBSCRIBE",   imap_cmd_subscribe,   IMAP_F_ANY },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, IMAP_F_ANY },
	{ "LIST",        imap_cmd_list,        IMAP_F_ANY },
	{ "LSUB",        imap_cmd_lsub,        IMAP_F_ANY },
	{ "APPEND",      imap_cmd_append,      IMAP_F_ANY },
	{ "IDLE",        imap_cmd_idle,        IMAP_F_ANY, "IDLE" },
	{ "FETCH",       imap_cmd_fetch,       IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE },
	{ "STORE",       imap_cmd_store,       IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE },
	{ "SEARCH",      imap_cmd_search,      IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE },
	{ "SORT",        imap_cmd_sort,        IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE,
	  "SORT" },
	{ "THREAD",      imap_cmd_thread,      IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE,
	  "THREAD" },
	{ "COPY",        imap_cmd_copy,        IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE },
	{ "MOVE",        imap_cmd_move,        IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE,
	  "MOVE" },
	{ "REPLACE",     imap_cmd_replace,     IMAP_F_SELECTED | IMAP_F_NO_EXPUNGE,
	  "REPLACE" },
	{ "EXPUNGE",     imap_cmd_expunge,     IMAP_F_SELECTED },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, IMAP_F_ANY, "QUOTA" },
	{ "GETQUOTA",    imap_cmd_getquota,    IMAP_F_ANY, "QUOTA" },
	{ "SETQUOTA",    imap_cmd_setquota,    IMAP_F_ANY, "QUOTA" },
};
/* clang-format on */

static const char *imap_state_names[] = {"authenticated", "selected",
					 "logout"};
_Static_assert(sizeof(imap_state_names) / sizeof(imap_state_names[0]) ==
		       IMAP_STATE_COUNT,
	       "imap state names");

/* Commands that UID may prefix. */
static const char *imap_uid_cmds[] = {"FETCH", "STORE",   "COPY",
				      "MOVE",  "EXPUNGE", "SEARCH",
				      "SORT",  "THREAD",  "REPLACE"};

uint64_t
backend_imap_append_limit(const struct config *cfg)
{
	uint64_t lit = cfg->limits_max_literal_size;
	uint64_t cmd = cfg->limits_max_command_size;
	uint64_t line = (uint64_t)cfg->limits_max_line + 2;
	uint64_t room = cmd > line ? cmd - line : 0;
	uint64_t all = cfg->backend_max_command_memory;
	if (all != 0 && all < room)
		room = all;
	return lit < room ? lit : room;
}

void
imap_set_state(struct imap_session *is, enum imap_state state)
{
	if (is->state == state)
		return;
	log_debug("session=%s imap state %s -> %s", is->s->id,
		  imap_state_names[is->state], imap_state_names[state]);
	is->state = state;
}

void
imap_tagged(struct imap_cmd_ctx *cmd, const char *status, const char *fmt,
	    ...)
{
	struct imap_session *is = cmd->is;
	struct bsession *s = is->s;
	va_list ap;
	imap_cmd_count(cmd, status);
	if (is->withheld && is->state == IMAP_STATE_SELECTED &&
	    (is->enabled & IMAP_ENABLE_CONDSTORE) &&
	    strcmp(status, "OK") == 0) {
		/* Expunges are held back while MODSEQs newer than them may
		   have been sent: the client is given the modseq it has
		   everything up to, so that a resynchronisation from it
		   finds them (RFC 7162 3.2, errata 1810 of RFC 5162). */
		struct buf text = BUF_INIT;
		va_start(ap, fmt);
		buf_vprintf(&text, fmt, ap);
		va_end(ap);
		unsigned long long m = is->mbox.highestmodseq;
		if (buf_used(&text) > 0 && buf_ptr(&text)[0] == '[')
			imap_untagged(is, "OK [HIGHESTMODSEQ %llu] Highest", m);
		session_printf(s, "%s OK ", cmd->tag);
		if (buf_used(&text) == 0 || buf_ptr(&text)[0] != '[')
			session_printf(s, "[HIGHESTMODSEQ %llu] ", m);
		session_write(s, buf_ptr(&text), buf_used(&text));
		session_write(s, "\r\n", 2);
		buf_free(&text);
		return;
	}
	session_printf(s, "%s %s ", cmd->tag, status);
	va_start(ap, fmt);
	session_vprintf(s, fmt, ap);
	va_end(ap);
	session_write(s, "\r\n", 2);
}

void
imap_untagged(struct imap_session *is, const char *fmt, ...)
{
	struct bsession *s = is->s;
	va_list ap;
	session_write(s, "* ", 2);
	va_start(ap, fmt);
	session_vprintf(s, fmt, ap);
	va_end(ap);
	session_write(s, "\r\n", 2);
}

void
imap_write_string(struct imap_session *is, const char *str, size_t len)
{
	int quoted = len < 1024;
	/* UTF-8 may be quoted once the client said it reads it (RFC 6855,
	   RFC 9051). */
	int utf8 = (is->enabled & IMAP_ENABLE_UTF8) &&
		   imap_utf8_valid(str, len);
	for (size_t i = 0; quoted && i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\r' || c == '\n' || c == 0 || (c >= 0x80 && !utf8))
			quoted = 0;
	}
	if (!quoted) {
		session_printf(is->s, "{%zu}\r\n", len);
		session_write(is->s, str, len);
		return;
	}
	session_write(is->s, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\') {
			session_write(is->s, str + start, i - start);
			session_write(is->s, "\\", 1);
			start = i;
		}
	}
	session_write(is->s, str + start, len - start);
	session_write(is->s, "\"", 1);
}

static const struct imap_cmd *
imap_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++)
		if (strcasecmp(imap_cmds[i].name, name) == 0)
			return &imap_cmds[i];
	return NULL;
}

/* Commands by name and result, for /metrics (the loop's thread only). */
static uint64_t imap_cmd_counts[sizeof(imap_cmds) / sizeof(imap_cmds[0])]
			       [2][3];

static void
imap_cmd_count(const struct imap_cmd_ctx *cmd, const char *status)
{
	const struct imap_cmd *c = imap_cmd_find(cmd->name);
	int r = strcmp(status, "OK") == 0 ? 0 : strcmp(status, "NO") == 0 ? 1
									   : 2;
	if (c != NULL)
		metrics_add(&imap_cmd_counts[c - imap_cmds][cmd->uid ? 1 : 0][r],
			    1);
}

void
imap_metrics_write(struct buf *b)
{
	static const char *results[3] = {"OK", "NO", "BAD"};
	char labels[128];
	for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++)
		for (int u = 0; u < 2; u++)
			for (int r = 0; r < 3; r++) {
				uint64_t n = metrics_get(&imap_cmd_counts[i][u][r]);
				if (n == 0)
					continue;
				snprintf(labels, sizeof(labels),
					 "protocol=\"imap\",command=\"%s%s\","
					 "result=\"%s\"",
					 u ? "UID " : "", imap_cmds[i].name,
					 results[r]);
				metrics_sample(b,
					       "portico_backend_commands_total",
					       labels, n);
			}
}

static int
imap_is_uid_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_uid_cmds) / sizeof(imap_uid_cmds[0]);
	     i++)
		if (strcasecmp(imap_uid_cmds[i], name) == 0)
			return 1;
	return 0;
}

static void
imap_bad(struct imap_session *is, const char *tag, const char *msg)
{
	session_printf(is->s, "%s BAD %s\r\n", tag, msg);
	if (++is->bad_commands >= (unsigned)is->s->be->cfg.limits_max_bad_commands) {
		imap_untagged(is, "BYE Too many invalid commands");
		imap_set_state(is, IMAP_STATE_LOGOUT);
		session_end(is->s, "too many invalid commands");
	}
}

void
imap_own_change(struct imap_session *is, uint32_t uid, uint64_t modseq)
{
	if (is->nown == is->capown) {
		size_t cap = is->capown ? is->capown * 2 : 64;
		struct imap_own *v = realloc(is->own, cap * sizeof(*v));
		if (v == NULL)
			abort();
		is->own = v;
		is->capown = cap;
	}
	is->own[is->nown].uid = uid;
	is->own[is->nown].modseq = modseq;
	is->nown++;
}

static int
imap_is_own(const struct imap_session *is, uint32_t uid, uint64_t modseq)
{
	for (size_t i = 0; i < is->nown; i++)
		if (is->own[i].uid == uid && is->own[i].modseq == modseq)
			return 1;
	return 0;
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Brings the selected mailbox view up to date with the store, from the
 * modseq index (never a scan of the mailbox): messages expunged by other
 * sessions (IMAP or POP3) are reported with EXPUNGE (VANISHED once QRESYNC
 * is enabled) when allowed (RFC 3501 7.4.1: not during FETCH, STORE or
 * SEARCH), new ones with EXISTS, flag changes with FETCH. */
void
imap_sync(struct imap_session *is, int allow_expunge)
{
	struct store *st = is->s->be->store;
	struct store_mailbox_rec mb;
	uint32_t *changed = NULL, *vanished = NULL;
	size_t nchanged = 0, nvanished = 0;
	MDB_txn *txn = NULL;
	const char *err, *kwnames;
	size_t kwlen;
	if (is->state != IMAP_STATE_SELECTED)
		return;
	if (store_read_begin(st, &txn, &err) < 0)
		goto fail;
	int rc = store_mailbox_get_by_id(st, txn, is->mbox.mbox_id, &mb, &err);
	if (rc != 0 || mb.noselect) {
		store_read_end(&txn);
		if (rc < 0)
			goto fail;
		imap_untagged(is, "BYE [NONEXISTENT] Selected mailbox was "
				  "deleted");
		imap_set_state(is, IMAP_STATE_LOGOUT);
		session_end(is->s, "mailbox deleted");
		return;
	}
	if (mb.highestmodseq == is->mbox.highestmodseq) {
		store_read_end(&txn);
		return;
	}
	uint64_t since = is->mbox.highestmodseq;
	int exact = 1;
	if (store_changed_since(st, txn, mb.mbox_id, since, &changed,
				&nchanged, &err) < 0 ||
	    store_vanished_since(st, txn, mb.mbox_id, since, &vanished,
				 &nvanished, &exact, &err) < 0 ||
	    store_keywords_get(st, txn, mb.mbox_id, &kwnames, &kwlen, &err) <
		    0) {
		store_read_end(&txn);
		free(changed);
		free(vanished);
		goto fail;
	}
	if (!exact) {
		/* More expunges since this session last looked than the
		   store remembers: ask for each message shown whether it is
		   still there. */
		nvanished = 0;
		uint32_t *v = realloc(vanished,
				      (is->count ? is->count : 1) *
					      sizeof(*v));
		if (v == NULL)
			abort();
		vanished = v;
		struct store_msg_reader rd;
		if (store_msg_reader_open(st, txn, mb.mbox_id, &rd, &err) < 0) {
			store_read_end(&txn);
			free(changed);
			free(vanished);
			goto fail;
		}
		for (size_t i = 0; i < is->count; i++) {
			struct store_msg_rec m;
			int r = store_msg_reader_get(&rd, is->uids[i], &m,
						     &err);
			if (r < 0) {
				store_msg_reader_close(&rd);
				store_read_end(&txn);
				free(changed);
				free(vanished);
				goto fail;
			}
			if (r == 1)
				vanished[nvanished++] = is->uids[i];
		}
		store_msg_reader_close(&rd);
	}
	int pending = 0;
	/* Expunges. */
	if (nvanished > 0) {
		struct buf gone = BUF_INIT;
		uint32_t *vlist = malloc(nvanished * sizeof(*vlist));
		size_t nv = 0;
		if (vlist == NULL)
			abort();
		size_t keep = 0;
		for (size_t i = 0; i < is->count; i++) {
			uint32_t uid = is->uids[i];
			int gone_now = bsearch(&uid, vanished, nvanished,
					       sizeof(uint32_t), uid_cmp) != NULL;
			if (!gone_now || !allow_expunge) {
				is->uids[keep++] = uid;
				pending |= gone_now;
				continue;
			}
			if (is->enabled & IMAP_ENABLE_QRESYNC)
				vlist[nv++] = uid;
			else
				imap_untagged(is, "%zu EXPUNGE", keep + 1);
		}
		is->count = keep;
		if (nv > 0) {
			imap_uid_set_format(vlist, nv, &gone);
			buf_append(&gone, "", 1);
			imap_untagged(is, "VANISHED %s", buf_ptr(&gone));
		}
		free(vlist);
		buf_free(&gone);
	}
	/* New messages, then flag changes of the ones shown. */
	uint32_t last = is->count ? is->uids[is->count - 1] : 0;
	if (nchanged > 1)
		qsort(changed, nchanged, sizeof(uint32_t), uid_cmp);
	size_t added = 0;
	for (size_t k = 0; k < nchanged; k++)
		if (changed[k] > last)
			added++;
	for (size_t k = 0; k < nchanged && changed[k] <= last; k++) {
		long idx = imap_uid_index(is, changed[k]);
		struct store_msg_rec m;
		if (idx < 0 || store_message_get(st, txn, mb.mbox_id,
						 changed[k], &m, &err) != 0 ||
		    imap_is_own(is, changed[k], m.modseq))
			continue;
		session_printf(is->s, "* %ld FETCH (UID %u FLAGS ", idx + 1,
			       changed[k]);
		imap_write_flags(is, m.flags, m.keywords, kwnames, kwlen);
		if (is->enabled & IMAP_ENABLE_CONDSTORE)
			session_printf(is->s, " MODSEQ (%llu)",
				       (unsigned long long)m.modseq);
		session_write(is->s, ")\r\n", 3);
	}
	store_read_end(&txn);
	if (added > 0) {
		uint32_t *nu = realloc(is->uids,
				       (is->count + added) * sizeof(*nu));
		if (nu == NULL)
			abort();
		is->uids = nu;
		for (size_t k = 0; k < nchanged; k++)
			if (changed[k] > last)
				is->uids[is->count++] = changed[k];
		imap_untagged(is, "%zu EXISTS", is->count);
	}
	free(changed);
	free(vanished);
	is->withheld = pending;
	if (!pending) {
		is->mbox.highestmodseq = mb.highestmodseq;
		is->nown = 0;
	}
	is->mbox.uidnext = mb.uidnext;
	return;
fail:
	log_error("session=%s store error=\"%s\"", is->s->id, err);
}

static void
imap_dispatch(struct imap_session *is, const char *line, size_t len)
{
	const struct config *cfg = &is->s->be->cfg;
	struct imap_parse_limits lim = {(unsigned)cfg->limits_max_nesting,
					100000, cfg->limits_max_line};
	struct imap_arg *args;
	unsigned argc;
	const char *err;
	char tag[128];

	arena_clear(&is->cmd_pool);
	/* A large command (an APPEND of a large message) is kept as it was
	   read and its large literals used where they are, not copied into
	   the arena, until the command is done (imap_command_done()). */
	if (len >= IMAP_BORROW_MIN) {
		line = lp_hold_command(&is->lp, &is->held);
		lim.borrow_min = IMAP_BORROW_MIN;
	}
	lp_tag(line, len, tag, sizeof(tag));
	if (imap_parse(line, len, &is->cmd_pool, &lim, &args, &argc, &err) <
	    0) {
		imap_bad(is, tag, err);
		return;
	}
	if (strcmp(tag, "*") == 0 || argc < 2 || args[1].type != IMAP_ARG_ATOM) {
		imap_bad(is, tag, argc < 2 ? "Missing command" : "Invalid tag");
		return;
	}
	struct imap_cmd_ctx cmd = {is, tag, args[1].str, args + 2, argc - 2, 0};
	if (strcasecmp(cmd.name, "UID") == 0) {
		if (argc < 3 || args[2].type != IMAP_ARG_ATOM ||
		    !imap_is_uid_cmd(args[2].str)) {
			imap_bad(is, tag, "Unknown UID command");
			return;
		}
		cmd.uid = 1;
		cmd.name = args[2].str;
		cmd.args = args + 3;
		cmd.argc = argc - 3;
	}
	const struct imap_cmd *c = imap_cmd_find(cmd.name);
	/* a command of a capability switched off for the session, and UID
	   EXPUNGE without UIDPLUS, are unknown to this session */
	if (c != NULL && ((c->cap != NULL && !imap_offers(is, c->cap)) ||
			  (cmd.uid && strcasecmp(c->name, "EXPUNGE") == 0 &&
			   !imap_offers(is, "UIDPLUS")))) {
		imap_bad(is, tag, "Unknown command");
		return;
	}
	if (c == NULL) {
		if (strcasecmp(cmd.name, "LOGIN") == 0 ||
		    strcasecmp(cmd.name, "AUTHENTICATE") == 0 ||
		    strcasecmp(cmd.name, "STARTTLS") == 0) {
			imap_bad(is, tag, "Already authenticated");
			return;
		}
		imap_bad(is, tag, "Unknown command");
		return;
	}
	if ((c->flags & IMAP_F_SELECTED) && is->state != IMAP_STATE_SELECTED) {
		imap_bad(is, tag, "No mailbox selected");
		return;
	}
	if (!(c->flags & IMAP_F_NO_SYNC)) {
		imap_sync(is, !(c->flags & IMAP_F_NO_EXPUNGE));
		/* The selected mailbox was deleted: BYE, and nothing after
		   it (RFC 9051 7.1.5). */
		if (is->state == IMAP_STATE_LOGOUT)
			return;
	}
	c->func(&cmd);
}

int
imap_between_commands(const struct imap_session *is)
{
	const struct bsession *s = is->s;
	if (is->idling)
		return 1;
	return !s->waiting && buf_used(&is->lp.cmd) == 0 &&
	       is->lp.literal_left == 0;
}

static void
imap_shutdown(struct bsession *s, int force)
{
	struct imap_session *is = s->state;
	/* A kick does not wait for a command (or literal) the client
	   withholds, only for one being run. */
	if (is == NULL || s->ending ||
	    (!force && !imap_between_commands(is) &&
	     !((s->kicked || s->moving) && !s->waiting)))
		return;
	/* A backend that stops hands its sessions in IDLE or between
	   commands to their frontends, which keep the clients until it is
	   back; the rest of the grace time waits for the answer to a
	   Park. */
	if (((s->be->draining && !s->kicked) || s->moving) && !s->draining &&
	    !force && imap_between_commands(is) &&
	    (is->parking || imap_park(is)))
		return;
	is->parking = 0;
	if (s->kicked || s->moving)
		imap_untagged(is, "BYE Session ended by an administrator");
	else
		imap_untagged(is, "BYE [UNAVAILABLE] Server shutting down");
	imap_set_state(is, IMAP_STATE_LOGOUT);
	session_end(s, s->kicked || s->moving ? "kicked" : "shutdown");
}

/* Once a command is done (its answer given, no store operation in
 * flight, not IDLE), its memory goes: a session that stored a 50 MB
 * message and then idles for hours does not keep the message. */
static void
imap_command_done(struct imap_session *is)
{
	if (is->s->waiting || is->idling)
		return;
	arena_clear(&is->cmd_pool);
	lp_held_release(&is->held);
}

static void
imap_input(struct bsession *s)
{
	struct imap_session *is = s->state;
	/* the frontend sent this before it had our Park: it ignores it */
	if (is->parking && buf_used(&s->in) > 0)
		is->parking = 0;
	is->active_at = uv_now(s->be->loop);
	imap_command_done(is);
	/* Stopping: no command begins after the one that was running. */
	if (session_draining(s))
		imap_shutdown(s, 0);
	while (buf_used(&s->in) > 0 && !s->ending && !s->waiting &&
	       !session_output_full(s)) {
		size_t used;
		enum lp_status st = lp_feed(&is->lp, buf_ptr(&s->in),
					    buf_used(&s->in), &used);
		buf_consume(&s->in, used);
		session_consumed(s, used);
		size_t len;
		const char *line;
		char tag[128];
		switch (st) {
		case LP_MORE:
			return;
		case LP_CONTINUE:
			session_write(s, "+ OK\r\n", 6);
			continue;
		case LP_COMMAND:
			line = lp_command(&is->lp, &len);
			protolog_command(s->plog, line, len, 0);
			if (is->idling)
				imap_idle_line(is, line, len);
			else
				imap_dispatch(is, line, len);
			lp_next(&is->lp);
			imap_command_done(is);
			if (session_draining(s))
				imap_shutdown(s, 0);
			continue;
		case LP_ERROR:
			line = lp_command(&is->lp, &len);
			protolog_command(s->plog, line, len, 0);
			lp_tag(line, len, tag, sizeof(tag));
			if (lp_error_temporary(&is->lp))
				session_printf(s, "%s NO %s\r\n", tag,
					       lp_error(&is->lp));
			else
				imap_bad(is, tag, lp_error(&is->lp));
			lp_next(&is->lp);
			continue;
		case LP_FATAL:
			imap_untagged(is, "BYE %s", lp_error(&is->lp));
			imap_set_state(is, IMAP_STATE_LOGOUT);
			session_end(s, "fatal input error");
			return;
		case LP_STATUS_COUNT:
			abort();
		}
	}
}

const char *
imap_mailbox_arg(struct imap_cmd_ctx *cmd, const struct imap_arg *arg)
{
	struct imap_session *is = cmd->is;
	if (!imap_arg_is_astring(arg) || strlen(arg->str) != arg->len) {
		imap_tagged(cmd, "BAD", "Invalid mailbox name");
		return NULL;
	}
	struct buf b = BUF_INIT;
	if (is->enabled & IMAP_ENABLE_UTF8) {
		if (!imap_utf8_valid(arg->str, arg->len)) {
			imap_tagged(cmd, "BAD", "Mailbox name is not UTF-8");
			return NULL;
		}
		buf_append(&b, arg->str, arg->len);
	} else if (imap_mutf7_to_utf8(arg->str, arg->len, &b) < 0) {
		buf_free(&b);
		imap_tagged(cmd, "NO", "[CANNOT] Invalid modified UTF-7 in "
				       "mailbox name");
		return NULL;
	}
	/* INBOX is case-insensitive, also as a parent (RFC 3501 5.1). */
	if (buf_used(&b) >= 5 && strncasecmp(buf_ptr(&b), "INBOX", 5) == 0 &&
	    (buf_used(&b) == 5 || buf_ptr(&b)[5] == '/'))
		memcpy(buf_ptr(&b), "INBOX", 5);
	const char *bad = imap_name_check(buf_ptr(&b), buf_used(&b));
	if (bad != NULL) {
		buf_free(&b);
		imap_tagged(cmd, "NO", "%s", bad);
		return NULL;
	}
	char *name = arena_strndup(&is->cmd_pool, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
	return name;
}

void
imap_write_mailbox(struct imap_session *is, const char *name)
{
	if (is->enabled & IMAP_ENABLE_UTF8) {
		imap_write_string(is, name, strlen(name));
		return;
	}
	struct buf b = BUF_INIT;
	imap_utf8_to_mutf7(name, strlen(name), &b);
	imap_write_string(is, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
}

long
imap_uid_index(const struct imap_session *is, uint32_t uid)
{
	size_t lo = 0, hi = is->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (is->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < is->count && is->uids[lo] == uid ? (long)lo : -1;
}

int
imap_set_uids(struct imap_cmd_ctx *cmd, const char *set, uint32_t **uids_r,
	      size_t *n_r)
{
	struct imap_session *is = cmd->is;
	struct imap_range *ranges;
	unsigned nranges;
	uint32_t max = cmd->uid ? (is->count ? is->uids[is->count - 1] : 0)
				: (uint32_t)is->count;
	if (strcmp(set, "$") == 0) {
		/* SEARCHRES (RFC 5182): the saved result, as it still is. */
		uint32_t *uids = arena_alloc(&is->cmd_pool,
					     (is->nsaved ? is->nsaved : 1) *
						     sizeof(*uids));
		size_t n = 0;
		for (size_t i = 0; i < is->nsaved; i++)
			if (imap_uid_index(is, is->saved[i]) >= 0)
				uids[n++] = is->saved[i];
		*uids_r = uids;
		*n_r = n;
		return 0;
	}
	if (imap_seqset_parse(set, max, &is->cmd_pool, &ranges, &nranges) < 0) {
		imap_tagged(cmd, "BAD", "Invalid sequence set");
		return -1;
	}
	if (!cmd->uid) {
		for (unsigned i = 0; i < nranges; i++) {
			if (ranges[i].lo == 0 || ranges[i].hi > is->count) {
				imap_tagged(cmd, "BAD",
					    "Invalid message sequence number");
				return -1;
			}
		}
	}
	uint32_t *uids = arena_alloc(&is->cmd_pool,
				     (is->count ? is->count : 1) *
					     sizeof(*uids));
	*n_r = imap_seqset_select(ranges, nranges, cmd->uid, is->uids,
				  is->count, &is->cmd_pool, uids);
	*uids_r = uids;
	return 0;
}

void
imap_store_failed(struct imap_cmd_ctx *cmd, int rc, const char *err)
{
	switch (rc) {
	case STORE_ERR_NONEXISTENT:
	case STORE_ERR_EXISTS:
	case STORE_ERR_QUOTA:
	case STORE_ERR_LIMIT:
	case STORE_ERR_CANNOT:
		imap_tagged(cmd, "NO", "%s", err);
		return;
	case STORE_ERR_FULL:
		log_error("session=%s store full: %s", cmd->is->s->id, err);
		imap_tagged(cmd, "NO", "[LIMIT] Mail store is full; try again "
				       "later");
		return;
	default:
		log_error("session=%s store error=\"%s\"", cmd->is->s->id,
			  err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
}

static const struct {
	const char *name;
	uint32_t bit;
} imap_system_flags[] = {
	{"\\Seen", STORE_F_SEEN},         {"\\Answered", STORE_F_ANSWERED},
	{"\\Flagged", STORE_F_FLAGGED},   {"\\Deleted", STORE_F_DELETED},
	{"\\Draft", STORE_F_DRAFT},
};

static int
imap_keyword_valid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			return 0;
	}
	return 1;
}

int
imap_flags_parse(struct imap_cmd_ctx *cmd, const struct imap_arg *arg,
		 uint32_t *flags_r, const char ***keywords_r,
		 unsigned *nkeywords_r)
{
	const struct imap_arg *items = arg;
	unsigned n = 1;
	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->count;
	}
	const char **kw = arena_alloc(&cmd->is->cmd_pool,
				      (n ? n : 1) * sizeof(*kw));
	unsigned nkw = 0;
	uint32_t flags = 0;
	for (unsigned i = 0; i < n; i++) {
		if (items[i].type != IMAP_ARG_ATOM) {
			imap_tagged(cmd, "BAD", "Invalid flag");
			return -1;
		}
		const char *f = items[i].str;
		if (f[0] == '\\') {
			size_t k;
			for (k = 0; k < sizeof(imap_system_flags) /
						sizeof(imap_system_flags[0]);
			     k++) {
				if (strcasecmp(f, imap_system_flags[k].name) ==
				    0) {
					flags |= imap_system_flags[k].bit;
					break;
				}
			}
			if (k == sizeof(imap_system_flags) /
					 sizeof(imap_system_flags[0])) {
				if (strcasecmp(f, "\\Recent") == 0) {
					imap_tagged(cmd, "BAD",
						    "\\Recent cannot be set");
					return -1;
				}
				imap_tagged(cmd, "BAD", "Invalid system flag");
				return -1;
			}
			continue;
		}
		if (!imap_keyword_valid(f)) {
			imap_tagged(cmd, "BAD", "Invalid keyword");
			return -1;
		}
		kw[nkw++] = f;
	}
	*flags_r = flags;
	*keywords_r = kw;
	*nkeywords_r = nkw;
	return 0;
}

void
imap_write_flags(struct imap_session *is, uint32_t flags, uint64_t keywords,
		 const char *names, size_t nameslen)
{
	char sys[128];
	imap_flags_format(flags, sys, sizeof(sys));
	session_write(is->s, "(", 1);
	session_puts(is->s, sys);
	int first = sys[0] == '\0';
	size_t off = 0;
	for (unsigned b = 0;
	     keywords != 0 && b < STORE_MAX_KEYWORDS && off < nameslen; b++) {
		const char *name = names + off;
		size_t l = strnlen(name, nameslen - off);
		if (keywords & (1ULL << b)) {
			if (!first)
				session_write(is->s, " ", 1);
			session_write(is->s, name, l);
			first = 0;
		}
		off += l + 1;
	}
	session_write(is->s, ")", 1);
}

struct imap_cmd_ctx *
imap_cmd_keep(struct imap_cmd_ctx *cmd)
{
	struct imap_cmd_ctx *c = arena_alloc(&cmd->is->cmd_pool, sizeof(*c));
	*c = *cmd;
	c->tag = arena_strdup(&cmd->is->cmd_pool, cmd->tag);
	c->name = arena_strdup(&cmd->is->cmd_pool, cmd->name);
	return c;
}

static void
imap_notify(struct bsession *s, uint64_t mbox_id)
{
	struct imap_session *is = s->state;
	if (is == NULL || !is->idling || is->parking ||
	    is->state != IMAP_STATE_SELECTED ||
	    (mbox_id != BACKEND_MBOX_ANY && is->mbox.mbox_id != mbox_id))
		return;
	imap_sync(is, 1);
	/* most often it said something; the keepalive can wait */
	is->idle_said_at = is->idle_since = uv_now(s->be->loop);
}

static void
imap_tick(struct bsession *s, uint64_t now)
{
	struct imap_session *is = s->state;
	if (is == NULL || is->parking)
		return;
	uint64_t after = (uint64_t)s->be->cfg.imap_park_after * 1000;
	uint64_t quiet = now - (is->idling ? is->idle_since : is->active_at);
	if (after > 0 && quiet >= after && imap_park(is))
		return;
	imap_idle_tick(is, now);
}

static int
imap_open(struct bsession *s, const Portico__Open *o, const char **code_r,
	  const char **reason_r)
{
	struct store_user_rec u;
	MDB_txn *txn;
	const char *err;
	if (store_read_begin(s->be->store, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", s->id, err);
		*code_r = "SERVERBUG";
		*reason_r = "Mail store unavailable";
		return -1;
	}
	int rc = store_user_get(s->be->store, txn, s->mailbox_id, &u, &err);
	store_read_end(&txn);
	if (rc != 0) {
		if (rc < 0)
			log_error("session=%s store error=\"%s\"", s->id, err);
		*code_r = "UNAVAILABLE";
		*reason_r = rc > 0 ? "Mailbox not provisioned on this server"
				   : "Mail store error";
		return -1;
	}
	struct imap_session *is = calloc(1, sizeof(*is));
	if (is == NULL)
		abort();
	is->s = s;
	is->user_num = u.user_num;
	is->active_at = uv_now(s->be->loop);
	const struct config *cfg = &s->be->cfg;
	struct lp_limits lim = {cfg->limits_max_line,
				cfg->limits_max_literal_size,
				cfg->limits_max_command_size, 1000,
				cfg->limits_literal_plus ? 0 : 4096};
	lp_init(&is->lp, LP_MODE_IMAP, &lim);
	lp_set_budget(&is->lp, &s->be->cmd_budget);
	arena_init(&is->cmd_pool, 8192);
	if (cfg->log_protocol_imap)
		s->plog = protolog_new(PROTOLOG_IMAP, s->id,
				       (size_t)cfg->log_protocol_max_line);
	imap_caps_apply(is, o->imap_capabilities_off, o->client_id);
	is->state = IMAP_STATE_AUTHENTICATED;
	s->state = is;
	if (o->resume.len > 0)
		return imap_resume(is, o, code_r, reason_r);
	session_printf(s, "%s OK [CAPABILITY %s] Logged in\r\n", o->tag,
		       imap_capabilities(is));
	return 0;
}

static void
imap_free(struct bsession *s)
{
	struct imap_session *is = s->state;
	if (is == NULL)
		return;
	imap_mailbox_close(is);
	free(is->own);
	free(is->saved);
	free(is->caps);
	free(is->caps_off_account);
	lp_free(&is->lp);
	lp_held_release(&is->held);
	arena_free(&is->cmd_pool);
	free(is);
	s->state = NULL;
}

const struct session_engine imap_engine = {
    .name = "imap",
    .open = imap_open,
    .input = imap_input,
    .free = imap_free,
    .notify = imap_notify,
    .shutdown = imap_shutdown,
    .tick = imap_tick,
    .parked = imap_parked,
};
