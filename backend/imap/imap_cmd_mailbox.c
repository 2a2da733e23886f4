/* imap_cmd_mailbox.c - CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 * LIST, LSUB. */
#include "backend/imap/imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

struct mailbox_op {
	struct imap_cmd_ctx *cmd;
	struct store_mailbox_args a;
	const char *done_text;
};

static void
mailbox_op_done(void *ctx, int rc, const char *err)
{
	struct mailbox_op *op = ctx;
	if (rc != 0) {
		imap_store_failed(op->cmd, rc, err);
		return;
	}
	imap_tagged(op->cmd, "OK", "%s", op->done_text);
}

static void
mailbox_op(struct imap_cmd_ctx *cmd, store_op_fn *fn, const char *name,
	   const char *new_name, int subscribe, const char *done_text)
{
	struct imap_session *is = cmd->is;
	struct mailbox_op *op = arena_zalloc(&is->cmd_pool, sizeof(*op));
	op->cmd = imap_cmd_keep(cmd);
	op->a.user_num = is->user_num;
	op->a.name = name;
	op->a.new_name = new_name;
	op->a.subscribe = subscribe;
	op->done_text = done_text;
	session_store(is->s, fn, &op->a, mailbox_op_done, op, NULL);
}

/* A trailing delimiter only says the name is meant to have children
 * (RFC 3501 6.3.3): drop it. */
static const char *
strip_trailing_delimiter(struct imap_cmd_ctx *cmd, const struct imap_arg *arg,
			 struct imap_arg *tmp)
{
	*tmp = *arg;
	if (imap_arg_is_astring(arg) && arg->len > 1 &&
	    arg->str[arg->len - 1] == '/') {
		tmp->len = arg->len - 1;
		tmp->str = arena_strndup(&cmd->is->cmd_pool, arg->str, tmp->len);
	}
	return tmp->str;
}

void
imap_cmd_create(struct imap_cmd_ctx *cmd)
{
	struct imap_arg tmp;
	if (cmd->argc != 1) {
		imap_tagged(cmd, "BAD", "CREATE expects a mailbox name");
		return;
	}
	strip_trailing_delimiter(cmd, &cmd->args[0], &tmp);
	if (strpbrk(tmp.str, "%*") != NULL) {
		imap_tagged(cmd, "NO", "[CANNOT] '%%' and '*' are not allowed "
				       "in mailbox names");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &tmp);
	if (name == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(cmd, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	mailbox_op(cmd, store_op_mailbox_create, name, NULL, 0,
		   "CREATE completed");
}

void
imap_cmd_delete(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 1) {
		imap_tagged(cmd, "BAD", "DELETE expects a mailbox name");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	mailbox_op(cmd, store_op_mailbox_delete, name, NULL, 0,
		   "DELETE completed");
}

void
imap_cmd_rename(struct imap_cmd_ctx *cmd)
{
	struct imap_arg tmp;
	if (cmd->argc != 2) {
		imap_tagged(cmd, "BAD", "RENAME expects two mailbox names");
		return;
	}
	const char *from = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (from == NULL)
		return;
	strip_trailing_delimiter(cmd, &cmd->args[1], &tmp);
	if (strpbrk(tmp.str, "%*") != NULL) {
		imap_tagged(cmd, "NO", "[CANNOT] '%%' and '*' are not allowed "
				       "in mailbox names");
		return;
	}
	const char *to = imap_mailbox_arg(cmd, &tmp);
	if (to == NULL)
		return;
	if (strcmp(to, "INBOX") == 0) {
		imap_tagged(cmd, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	mailbox_op(cmd, store_op_mailbox_rename, from, to, 0,
		   "RENAME completed");
}

static void
subscribe(struct imap_cmd_ctx *cmd, int on)
{
	if (cmd->argc != 1) {
		imap_tagged(cmd, "BAD", "Expected a mailbox name");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	mailbox_op(cmd, store_op_subscribe, name, NULL, on,
		   on ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed");
}

void
imap_cmd_subscribe(struct imap_cmd_ctx *cmd)
{
	subscribe(cmd, 1);
}

void
imap_cmd_unsubscribe(struct imap_cmd_ctx *cmd)
{
	subscribe(cmd, 0);
}

/* RFC 3501 6.3.8: '*' matches anything, '%' anything but the delimiter.
 * Bounded: the pattern has at most a few hundred characters and the
 * recursion backtracks per wildcard. */
static int
list_match(const char *pat, const char *name, unsigned depth)
{
	if (depth > 64)
		return 0;
	while (*pat != '\0') {
		if (*pat == '*' || *pat == '%') {
			char w = *pat;
			while (*pat == '*' || *pat == '%') {
				if (*pat == '*')
					w = '*';
				pat++;
			}
			for (const char *p = name;; p++) {
				if (list_match(pat, p, depth + 1))
					return 1;
				if (*p == '\0' || (w == '%' && *p == '/'))
					return 0;
			}
		}
		if (*name == '\0' || *pat != *name)
			return 0;
		pat++;
		name++;
	}
	return *name == '\0';
}

/* Matches with INBOX case-insensitive. */
static int
list_match_name(const char *pat, const char *name)
{
	if (strncasecmp(pat, "INBOX", 5) == 0 &&
	    (pat[5] == '\0' || pat[5] == '/') && strncmp(name, "INBOX", 5) == 0) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "INBOX%s", pat + 5);
		return list_match(tmp, name, 0);
	}
	return list_match(pat, name, 0);
}

static const char *
list_pattern(struct imap_cmd_ctx *cmd, const struct imap_arg *ref,
	     const struct imap_arg *pat)
{
	struct imap_session *is = cmd->is;
	if (!imap_arg_is_astring(ref) || !imap_arg_is_astring(pat) ||
	    strlen(ref->str) != ref->len || strlen(pat->str) != pat->len) {
		imap_tagged(cmd, "BAD", "Expected reference and pattern");
		return NULL;
	}
	struct buf raw = BUF_INIT, b = BUF_INIT;
	buf_append(&raw, ref->str, ref->len);
	buf_append(&raw, pat->str, pat->len);
	if (raw.len > 400 ||
	    imap_mutf7_to_utf8(buf_ptr(&raw), buf_used(&raw), &b) < 0) {
		buf_free(&raw);
		buf_free(&b);
		imap_tagged(cmd, "BAD", "Invalid mailbox pattern");
		return NULL;
	}
	const char *p = arena_strndup(&is->cmd_pool, buf_ptr(&b), buf_used(&b));
	buf_free(&raw);
	buf_free(&b);
	return p;
}

static int
has_child(const struct store_mailbox_info *list, size_t n, size_t i)
{
	size_t l = strlen(list[i].name);
	/* Names are sorted: children follow right after. */
	for (size_t j = i + 1; j < n; j++) {
		if (strncmp(list[j].name, list[i].name, l) != 0)
			return 0;
		if (list[j].name[l] == '/')
			return 1;
	}
	return 0;
}

static void
list_or_lsub(struct imap_cmd_ctx *cmd, int lsub)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	const char *what = lsub ? "LSUB" : "LIST";
	if (cmd->argc != 2) {
		imap_tagged(cmd, "BAD", "%s expects a reference and a pattern",
			    what);
		return;
	}
	const char *pat = list_pattern(cmd, &cmd->args[0], &cmd->args[1]);
	if (pat == NULL)
		return;
	if (cmd->args[1].len == 0) {
		/* The hierarchy delimiter and the root (RFC 3501 6.3.8). */
		imap_untagged(is, "%s (\\Noselect) \"/\" \"\"", what);
		imap_tagged(cmd, "OK", "%s completed", what);
		return;
	}
	MDB_txn *txn = NULL;
	const char *err;
	struct store_mailbox_info *list = NULL;
	size_t n = 0;
	char **subs = NULL;
	size_t nsubs = 0;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_mailboxes_list(st, txn, is->user_num, &list, &n, &err) < 0 ||
	    (lsub && store_subscriptions(st, txn, is->user_num, &subs, &nsubs,
					 &err) < 0)) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	store_read_end(&txn);
	if (!lsub) {
		for (size_t i = 0; i < n; i++) {
			if (!list_match_name(pat, list[i].name))
				continue;
			const char *su =
				store_special_use_name(list[i].rec.special_use);
			session_printf(is->s, "* LIST (%s%s%s%s) \"/\" ",
				       has_child(list, n, i) ? "\\HasChildren"
							     : "\\HasNoChildren",
				       list[i].rec.noselect ? " \\Noselect" : "",
				       su[0] ? " " : "", su);
			imap_write_mailbox(is, list[i].name);
			session_write(is->s, "\r\n", 2);
		}
	} else {
		for (size_t i = 0; i < nsubs; i++) {
			if (!list_match_name(pat, subs[i]))
				continue;
			int exists = 0;
			for (size_t j = 0; j < n && !exists; j++)
				exists = strcmp(list[j].name, subs[i]) == 0 &&
					 !list[j].rec.noselect;
			session_printf(is->s, "* LSUB (%s) \"/\" ",
				       exists ? "" : "\\Noselect");
			imap_write_mailbox(is, subs[i]);
			session_write(is->s, "\r\n", 2);
		}
	}
	store_mailboxes_free(list, n);
	store_names_free(subs, nsubs);
	imap_tagged(cmd, "OK", "%s completed", what);
}

void
imap_cmd_list(struct imap_cmd_ctx *cmd)
{
	list_or_lsub(cmd, 0);
}

void
imap_cmd_lsub(struct imap_cmd_ctx *cmd)
{
	list_or_lsub(cmd, 1);
}
