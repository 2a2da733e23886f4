/* imap_cmd_mailbox.c - CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 * LIST, LSUB. */
#include "backend/imap/imap.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stdio.h>

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
	/* sessions with it selected say BYE (IDLE at once) */
	if (op->a.mbox_id_gone != 0)
		backend_mailbox_changed(op->cmd->is->s->be, op->a.mbox_id_gone);
	if (op->a.mbox_id_out != 0)
		imap_tagged(op->cmd, "OK", "[MAILBOXID (F%016llx)] %s",
			    (unsigned long long)op->a.mbox_id_out,
			    op->done_text);
	else
		imap_tagged(op->cmd, "OK", "%s", op->done_text);
}

static struct mailbox_op *
mailbox_op(struct imap_cmd_ctx *cmd, store_op_fn *fn, const char *name,
	   const char *new_name, int subscribe, const char *done_text,
	   enum store_special_use su)
{
	struct imap_session *is = cmd->is;
	struct mailbox_op *op = arena_zalloc(&is->cmd_pool, sizeof(*op));
	op->cmd = imap_cmd_keep(cmd);
	op->a.user_num = is->user_num;
	op->a.name = name;
	op->a.new_name = new_name;
	op->a.subscribe = subscribe;
	op->a.special_use = su;
	op->done_text = done_text;
	session_store(is->s, fn, &op->a, mailbox_op_done, op, NULL);
	return op;
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
	enum store_special_use su = STORE_SU_NONE;
	if (cmd->argc == 2) {
		/* RFC 6154 3: CREATE name (USE (\\Sent)) */
		const struct imap_arg *p = &cmd->args[1];
		if (p->type != IMAP_ARG_LIST || p->count != 2 ||
		    !imap_arg_is_atom(&p->list[0], "USE") ||
		    p->list[1].type != IMAP_ARG_LIST) {
			imap_tagged(cmd, "BAD", "Invalid CREATE parameters");
			return;
		}
		const struct imap_arg *use = &p->list[1];
		if (use->count > 1) {
			imap_tagged(cmd, "NO", "[USEATTR] One special-use "
					       "attribute per mailbox");
			return;
		}
		for (unsigned i = 0; i < use->count; i++) {
			int found = 0;
			for (int k = 1; k < STORE_SU_COUNT; k++) {
				if (imap_arg_is_atom(&use->list[i],
						     store_special_use_name(k))) {
					su = (enum store_special_use)k;
					found = 1;
				}
			}
			if (!found) {
				imap_tagged(cmd, "NO", "[USEATTR] Unsupported "
						       "special-use attribute");
				return;
			}
		}
	} else if (cmd->argc != 1) {
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
		   "CREATE completed", su);
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
		   "DELETE completed", STORE_SU_NONE);
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
		   "RENAME completed", STORE_SU_NONE);
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
		   on ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed",
		   STORE_SU_NONE);
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

/* Matches with INBOX case-insensitive: for INBOX and the names below it,
 * the pattern's characters before its first wildcard that spell a prefix
 * of "INBOX" in any case are taken as that prefix ("inbox*", "Inb%"). */
static int
list_match_name(const char *pat, const char *name)
{
	if (strncmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/')) {
		size_t k = 0;
		while (k < 5 && pat[k] != '\0' &&
		       toupper((unsigned char)pat[k]) == "INBOX"[k])
			k++;
		if (k > 0 && strncmp(pat, "INBOX", k) != 0) {
			char tmp[512];
			snprintf(tmp, sizeof(tmp), "%.*s%s", (int)k, "INBOX",
				 pat + k);
			return list_match(tmp, name, 0);
		}
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
	int bad = buf_used(&raw) > 400;
	if (!bad && (is->enabled & IMAP_ENABLE_UTF8))
		buf_append(&b, buf_ptr(&raw), buf_used(&raw));
	else if (!bad)
		bad = imap_mutf7_to_utf8(buf_ptr(&raw), buf_used(&raw), &b) < 0;
	if (bad) {
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

static int
name_in(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

/* Whether a subscribed name lies below name. */
static int
subscribed_child(char **subs, size_t n, const char *name)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strncmp(subs[i], name, l) == 0 && subs[i][l] == '/')
			return 1;
	return 0;
}

enum list_opt {
	LIST_SEL_SUBSCRIBED = 1 << 0,
	LIST_SEL_RECURSIVE = 1 << 1,
	LIST_SEL_SPECIAL = 1 << 2,
	LIST_RET_SUBSCRIBED = 1 << 3,
	LIST_RET_STATUS = 1 << 4,
};

struct list_req {
	unsigned opts;
	const char **pats;
	unsigned npats;
	const struct imap_arg *status;
};

static int
list_any_match(const struct list_req *r, const char *name)
{
	for (unsigned i = 0; i < r->npats; i++)
		if (list_match_name(r->pats[i], name))
			return 1;
	return 0;
}

/* RFC 5258 (LIST-EXTENDED), RFC 5819 (LIST-STATUS), RFC 6154. */
static int
list_parse(struct imap_cmd_ctx *cmd, struct list_req *r)
{
	const struct imap_arg *a = cmd->args;
	unsigned argc = cmd->argc, i = 0;
	if (i < argc && a[i].type == IMAP_ARG_LIST) {
		for (unsigned k = 0; k < a[i].count; k++) {
			const struct imap_arg *o = &a[i].list[k];
			if (imap_arg_is_atom(o, "SUBSCRIBED"))
				r->opts |= LIST_SEL_SUBSCRIBED |
					   LIST_RET_SUBSCRIBED;
			else if (imap_arg_is_atom(o, "RECURSIVEMATCH"))
				r->opts |= LIST_SEL_RECURSIVE;
			else if (imap_arg_is_atom(o, "SPECIAL-USE"))
				r->opts |= LIST_SEL_SPECIAL;
			else if (imap_arg_is_atom(o, "REMOTE"))
				; /* nothing is remote */
			else
				return -1;
		}
		if ((r->opts & LIST_SEL_RECURSIVE) &&
		    !(r->opts & (LIST_SEL_SUBSCRIBED | LIST_SEL_SPECIAL)))
			return -1;
		i++;
	}
	if (argc - i < 2)
		return -1;
	const struct imap_arg *ref = &a[i++];
	const struct imap_arg *pats = &a[i++];
	if (pats->type == IMAP_ARG_LIST) {
		if (pats->count == 0)
			return -1;
		r->npats = pats->count;
		r->pats = arena_alloc(&cmd->is->cmd_pool,
				      r->npats * sizeof(*r->pats));
		for (unsigned k = 0; k < pats->count; k++)
			if ((r->pats[k] = list_pattern(cmd, ref,
						       &pats->list[k])) == NULL)
				return -2;
	} else {
		r->npats = 1;
		r->pats = arena_alloc(&cmd->is->cmd_pool, sizeof(*r->pats));
		if ((r->pats[0] = list_pattern(cmd, ref, pats)) == NULL)
			return -2;
	}
	if (i < argc) {
		if (!imap_arg_is_atom(&a[i], "RETURN") || i + 2 != argc ||
		    a[i + 1].type != IMAP_ARG_LIST)
			return -1;
		const struct imap_arg *ro = &a[i + 1];
		for (unsigned k = 0; k < ro->count; k++) {
			const struct imap_arg *o = &ro->list[k];
			if (imap_arg_is_atom(o, "SUBSCRIBED"))
				r->opts |= LIST_RET_SUBSCRIBED;
			else if (imap_arg_is_atom(o, "CHILDREN") ||
				 imap_arg_is_atom(o, "SPECIAL-USE"))
				; /* always returned */
			else if (imap_arg_is_atom(o, "STATUS") &&
				 k + 1 < ro->count &&
				 imap_status_items_valid(&ro->list[k + 1])) {
				r->opts |= LIST_RET_STATUS;
				r->status = &ro->list[++k];
			} else
				return -1;
		}
	}
	return 0;
}

static void
list_line(struct imap_session *is, const char *name, const char *attrs,
	  int childinfo)
{
	session_printf(is->s, "* LIST (%s) \"/\" ", attrs);
	imap_write_mailbox(is, name);
	if (childinfo)
		session_printf(is->s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	session_write(is->s, "\r\n", 2);
}

static void
list_or_lsub(struct imap_cmd_ctx *cmd, int lsub)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	const char *what = lsub ? "LSUB" : "LIST";
	struct list_req r = {0};
	int prc;
	if (lsub) {
		if (cmd->argc != 2) {
			imap_tagged(cmd, "BAD", "LSUB expects a reference and "
						"a pattern");
			return;
		}
		prc = list_parse(cmd, &r);
	} else {
		prc = list_parse(cmd, &r);
	}
	if (prc == -2)
		return;
	if (prc < 0) {
		imap_tagged(cmd, "BAD", "Invalid %s arguments", what);
		return;
	}
	/* The pattern follows the reference, and the selection options
	   when they are given (RFC 5258: "LIST () "" %" is "LIST "" %"). */
	unsigned pat = cmd->argc > 0 && cmd->args[0].type == IMAP_ARG_LIST ? 2
									   : 1;
	if (!lsub && r.opts == 0 && r.npats == 1 && pat < cmd->argc &&
	    cmd->args[pat].type != IMAP_ARG_LIST && r.pats[0][0] == '\0') {
		/* The hierarchy delimiter and the root (RFC 3501 6.3.8). */
		imap_untagged(is, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(cmd, "OK", "LIST completed");
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
	    store_subscriptions(st, txn, is->user_num, &subs, &nsubs, &err) <
		    0) {
		store_read_end(&txn);
		store_mailboxes_free(list, n);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	store_read_end(&txn);
	char attrs[256];
	if (lsub) {
		/* RFC 3501 6.3.9: with "%", a subscribed name below a level
		   the pattern stops at is answered by that level's unsubscribed
		   parent, flagged \Noselect, once. */
		char **parents = calloc(nsubs ? nsubs : 1, sizeof(*parents));
		size_t nparents = 0;
		if (parents == NULL)
			abort();
		for (size_t i = 0; i < nsubs; i++) {
			if (list_any_match(&r, subs[i]))
				continue;
			char *up = strdup(subs[i]);
			if (up == NULL)
				abort();
			for (char *sl = strchr(up, '/'); sl != NULL;
			     sl = strchr(sl + 1, '/')) {
				*sl = '\0';
				if (list_any_match(&r, up) &&
				    !name_in(subs, nsubs, up)) {
					if (!name_in(parents, nparents, up)) {
						session_printf(
						    is->s,
						    "* LSUB (\\Noselect) "
						    "\"/\" ");
						imap_write_mailbox(is, up);
						session_write(is->s, "\r\n", 2);
						parents[nparents++] = up;
						up = NULL;
					}
					break;
				}
				*sl = '/';
			}
			free(up);
		}
		for (size_t i = 0; i < nparents; i++)
			free(parents[i]);
		free(parents);
		for (size_t i = 0; i < nsubs; i++) {
			if (!list_any_match(&r, subs[i]))
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
	} else if (r.opts & LIST_SEL_SUBSCRIBED) {
		/* Subscribed names, existing or not, and with RECURSIVEMATCH
		   the parents of matching subscribed names. */
		for (size_t i = 0; i < nsubs; i++) {
			if (!list_any_match(&r, subs[i]))
				continue;
			const struct store_mailbox_info *mb = NULL;
			for (size_t j = 0; j < n && mb == NULL; j++)
				if (strcmp(list[j].name, subs[i]) == 0)
					mb = &list[j];
			if (mb != NULL && (r.opts & LIST_SEL_SPECIAL) &&
			    mb->rec.special_use == STORE_SU_NONE)
				continue;
			snprintf(attrs, sizeof(attrs), "\\Subscribed%s%s%s",
				 mb == NULL ? " \\NonExistent" : "",
				 mb && mb->rec.noselect ? " \\Noselect" : "",
				 mb && mb->rec.special_use ? " " : "");
			if (mb && mb->rec.special_use)
				strncat(attrs,
					store_special_use_name(mb->rec.special_use),
					sizeof(attrs) - strlen(attrs) - 1);
			list_line(is, subs[i], attrs, 0);
			if ((r.opts & LIST_RET_STATUS) && mb != NULL &&
			    !mb->rec.noselect)
				imap_status_write(is, subs[i], r.status,
						  &mb->rec);
		}
		if (r.opts & LIST_SEL_RECURSIVE) {
			for (size_t j = 0; j < n; j++) {
				if (!list_any_match(&r, list[j].name) ||
				    name_in(subs, nsubs, list[j].name) ||
				    !subscribed_child(subs, nsubs,
						      list[j].name))
					continue;
				list_line(is, list[j].name, "", 1);
			}
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			if (!list_any_match(&r, list[i].name))
				continue;
			if ((r.opts & LIST_SEL_SPECIAL) &&
			    list[i].rec.special_use == STORE_SU_NONE)
				continue;
			const char *su =
				store_special_use_name(list[i].rec.special_use);
			snprintf(attrs, sizeof(attrs), "%s%s%s%s%s",
				 has_child(list, n, i) ? "\\HasChildren"
						       : "\\HasNoChildren",
				 list[i].rec.noselect ? " \\Noselect" : "",
				 (r.opts & LIST_RET_SUBSCRIBED) &&
						 name_in(subs, nsubs,
							 list[i].name)
					 ? " \\Subscribed"
					 : "",
				 su[0] ? " " : "", su);
			list_line(is, list[i].name, attrs, 0);
			if ((r.opts & LIST_RET_STATUS) && !list[i].rec.noselect)
				imap_status_write(is, list[i].name, r.status,
						  &list[i].rec);
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
