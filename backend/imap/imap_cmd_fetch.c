/* imap_cmd_fetch.c - FETCH and UID FETCH. */
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"

enum fetch_kind {
	FETCH_UID,
	FETCH_FLAGS,
	FETCH_SIZE,
	FETCH_INTERNALDATE,
	FETCH_SAVEDATE,
	FETCH_EMAILID,
	FETCH_THREADID,
	FETCH_BODY,
	FETCH_KIND_COUNT
};

enum fetch_section {
	SECTION_ALL,
	SECTION_HEADER,
	SECTION_TEXT,
	SECTION_HEADER_FIELDS,
	SECTION_HEADER_FIELDS_NOT,
	SECTION_COUNT
};

struct fetch_item {
	enum fetch_kind kind;
	enum fetch_section section;
	int peek;
	const char *reply_name; /* e.g. "BODY[HEADER]" or "RFC822" */
	int partial;
	uint64_t offset, length;
	const char **fields;
	unsigned nfields;
};

struct fetch_req {
	struct fetch_item *items;
	unsigned n, cap;
	int want_flags, sets_seen, want_uid, want_modseq;
	uint64_t changedsince;  /* CHANGEDSINCE modifier, 0: none */
	int vanished;           /* VANISHED modifier (QRESYNC) */
};

static struct fetch_item *
fetch_add(struct arena *a, struct fetch_req *req, enum fetch_kind kind)
{
	if (req->n == req->cap) {
		unsigned cap = req->cap ? req->cap * 2 : 8;
		struct fetch_item *v = arena_alloc(a, cap * sizeof(*v));
		if (req->n)
			memcpy(v, req->items, req->n * sizeof(*v));
		req->items = v;
		req->cap = cap;
	}
	struct fetch_item *it = &req->items[req->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	return it;
}

/* Parses "HEADER.FIELDS (A B)" style field lists. */
static int
parse_fields(struct arena *a, const char *p, const char *end,
	     struct fetch_item *it)
{
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '(' || end[-1] != ')')
		return -1;
	p++;
	end--;
	unsigned cap = 8;
	it->fields = arena_alloc(a, cap * sizeof(char *));
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		const char *start = p;
		if (*p == '"') {
			start = ++p;
			while (p < end && *p != '"')
				p++;
			if (p >= end)
				return -1;
		} else {
			while (p < end && *p != ' ')
				p++;
		}
		if (p == start)
			return -1;
		if (it->nfields == cap) {
			if (cap >= 1024)
				return -1;
			const char **v = arena_alloc(a, cap * 2 * sizeof(char *));
			memcpy(v, it->fields, cap * sizeof(char *));
			it->fields = v;
			cap *= 2;
		}
		it->fields[it->nfields++] =
			arena_strndup(a, start, (size_t)(p - start));
		if (*p == '"')
			p++;
	}
	return it->nfields > 0 ? 0 : -1;
}

/* BODY[section]<partial> or BODY.PEEK[...]: atom already split at '['. */
static int
parse_body_item(struct arena *a, const char *atom, struct fetch_req *req)
{
	const char *open = strchr(atom, '[');
	const char *close = strrchr(atom, ']');
	if (open == NULL || close == NULL || close < open)
		return -1;
	int peek;
	size_t head = (size_t)(open - atom);
	if (head == 4 && strncasecmp(atom, "BODY", 4) == 0)
		peek = 0;
	else if (head == 9 && strncasecmp(atom, "BODY.PEEK", 9) == 0)
		peek = 1;
	else
		return -1;
	struct fetch_item *it = fetch_add(a, req, FETCH_BODY);
	it->peek = peek;
	const char *sec = open + 1;
	size_t seclen = (size_t)(close - sec);
	if (seclen == 0) {
		it->section = SECTION_ALL;
	} else if (seclen == 6 && strncasecmp(sec, "HEADER", 6) == 0) {
		it->section = SECTION_HEADER;
	} else if (seclen == 4 && strncasecmp(sec, "TEXT", 4) == 0) {
		it->section = SECTION_TEXT;
	} else if (seclen > 17 &&
		   strncasecmp(sec, "HEADER.FIELDS.NOT", 17) == 0 &&
		   (sec[17] == ' ' || sec[17] == '(')) {
		it->section = SECTION_HEADER_FIELDS_NOT;
		if (parse_fields(a, sec + 17, close, it) < 0)
			return -1;
	} else if (seclen > 13 && strncasecmp(sec, "HEADER.FIELDS", 13) == 0 &&
		   (sec[13] == ' ' || sec[13] == '(')) {
		it->section = SECTION_HEADER_FIELDS;
		if (parse_fields(a, sec + 13, close, it) < 0)
			return -1;
	} else {
		return -2; /* MIME part sections arrive with the MIME parser */
	}
	const char *rest = close + 1;
	if (*rest == '<') {
		char *end;
		unsigned long long off = strtoull(rest + 1, &end, 10);
		if (end == rest + 1 || *end != '.')
			return -1;
		const char *lp = end + 1;
		unsigned long long len = strtoull(lp, &end, 10);
		if (end == lp || *end != '>' || end[1] != '\0' || len == 0)
			return -1;
		it->partial = 1;
		it->offset = off;
		it->length = len;
	} else if (*rest != '\0') {
		return -1;
	}
	/* The reply names the section without PEEK, with the offset only. */
	it->reply_name = arena_printf(a, "BODY[%.*s]", (int)seclen, sec);
	if (it->partial)
		it->reply_name = arena_printf(a, "%s<%llu>", it->reply_name,
					      (unsigned long long)it->offset);
	if (!peek)
		req->sets_seen = 1;
	return 0;
}

static int
parse_item(struct arena *a, const struct imap_arg *arg, struct fetch_req *req)
{
	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	const char *s = arg->str;
	struct fetch_item *it;
	if (strchr(s, '[') != NULL)
		return parse_body_item(a, s, req);
	if (strcasecmp(s, "UID") == 0) {
		req->want_uid = 1;
	} else if (strcasecmp(s, "MODSEQ") == 0) {
		req->want_modseq = 1;
	} else if (strcasecmp(s, "FLAGS") == 0) {
		req->want_flags = 1;
	} else if (strcasecmp(s, "RFC822.SIZE") == 0) {
		fetch_add(a, req, FETCH_SIZE);
	} else if (strcasecmp(s, "INTERNALDATE") == 0) {
		fetch_add(a, req, FETCH_INTERNALDATE);
	} else if (strcasecmp(s, "SAVEDATE") == 0) {
		fetch_add(a, req, FETCH_SAVEDATE);
	} else if (strcasecmp(s, "EMAILID") == 0) {
		fetch_add(a, req, FETCH_EMAILID);
	} else if (strcasecmp(s, "THREADID") == 0) {
		fetch_add(a, req, FETCH_THREADID);
	} else if (strcasecmp(s, "FAST") == 0) {
		req->want_flags = 1;
		fetch_add(a, req, FETCH_INTERNALDATE);
		fetch_add(a, req, FETCH_SIZE);
	} else if (strcasecmp(s, "RFC822") == 0) {
		it = fetch_add(a, req, FETCH_BODY);
		it->section = SECTION_ALL;
		it->reply_name = "RFC822";
		req->sets_seen = 1;
	} else if (strcasecmp(s, "RFC822.HEADER") == 0) {
		it = fetch_add(a, req, FETCH_BODY);
		it->section = SECTION_HEADER;
		it->peek = 1;
		it->reply_name = "RFC822.HEADER";
	} else if (strcasecmp(s, "RFC822.TEXT") == 0) {
		it = fetch_add(a, req, FETCH_BODY);
		it->section = SECTION_TEXT;
		it->reply_name = "RFC822.TEXT";
		req->sets_seen = 1;
	} else {
		/* ENVELOPE, BODYSTRUCTURE, ALL and FULL need the MIME
		   parser. */
		return -2;
	}
	return 0;
}

/* Length of the header block, blank line included. */
static size_t
header_length(const char *data, size_t len)
{
	if (len >= 2 && data[0] == '\r' && data[1] == '\n')
		return 2;
	for (size_t i = 0; i + 3 < len; i++) {
		if (data[i] == '\r' && data[i + 1] == '\n' &&
		    data[i + 2] == '\r' && data[i + 3] == '\n')
			return i + 4;
	}
	return len;
}

static int
field_listed(const struct fetch_item *it, const char *name, size_t len)
{
	for (unsigned i = 0; i < it->nfields; i++)
		if (strlen(it->fields[i]) == len &&
		    strncasecmp(it->fields[i], name, len) == 0)
			return 1;
	return 0;
}

/* Builds the selected header fields into out. */
static void
header_fields(const struct fetch_item *it, const char *h, size_t hlen,
	      struct buf *out)
{
	int want_not = it->section == SECTION_HEADER_FIELDS_NOT;
	size_t i = 0;
	while (i < hlen) {
		/* One field: a line plus its continuation lines. */
		size_t start = i;
		const char *colon = NULL;
		for (;;) {
			const char *nl = memchr(h + i, '\n', hlen - i);
			size_t next = nl ? (size_t)(nl - h) + 1 : hlen;
			if (colon == NULL)
				colon = memchr(h + start, ':', next - start);
			i = next;
			if (i >= hlen || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		size_t flen = i - start;
		if (flen <= 2)
			break; /* the blank line */
		if (colon == NULL)
			continue;
		size_t nlen = (size_t)(colon - (h + start));
		while (nlen > 0 && (h[start + nlen - 1] == ' ' ||
				    h[start + nlen - 1] == '\t'))
			nlen--;
		if (field_listed(it, h + start, nlen) != want_not)
			buf_append(out, h + start, flen);
	}
	buf_append(out, "\r\n", 2);
}

static void
write_literal(struct imap_session *is, const struct fetch_item *it,
	      const char *data, size_t len)
{
	if (it->partial) {
		if (it->offset >= len) {
			len = 0;
		} else {
			data += it->offset;
			len -= (size_t)it->offset;
			if (len > it->length)
				len = (size_t)it->length;
		}
	}
	session_printf(is->s, "%s {%zu}\r\n", it->reply_name, len);
	session_write(is->s, data, len);
}

static void
fetch_one(struct imap_session *is, const struct fetch_req *req, uint32_t seq,
	  uint32_t uid, const struct store_msg_rec *m, const char *body,
	  size_t blen, const char *kwnames, size_t kwlen)
{
	struct bsession *s = is->s;
	int first = 1;
	session_printf(s, "* %u FETCH (", seq);
#define SEP() (first ? (first = 0, "") : " ")
	if (req->want_uid)
		session_printf(s, "%sUID %u", SEP(), uid);
	if (req->want_flags) {
		session_printf(s, "%sFLAGS ", SEP());
		imap_write_flags(is, m->flags, m->keywords, kwnames, kwlen);
	}
	if (req->want_modseq)
		session_printf(s, "%sMODSEQ (%llu)", SEP(),
			       (unsigned long long)m->modseq);
	for (unsigned i = 0; i < req->n; i++) {
		const struct fetch_item *it = &req->items[i];
		switch (it->kind) {
		case FETCH_SIZE:
			session_printf(s, "%sRFC822.SIZE %llu", SEP(),
				       (unsigned long long)m->size);
			break;
		case FETCH_INTERNALDATE:
		case FETCH_SAVEDATE: {
			static const char *mon[] = {"Jan", "Feb", "Mar", "Apr",
						    "May", "Jun", "Jul", "Aug",
						    "Sep", "Oct", "Nov", "Dec"};
			struct tm tm;
			time_t t = (time_t)(it->kind == FETCH_SAVEDATE
						    ? m->savedate
						    : m->internaldate);
			gmtime_r(&t, &tm);
			session_printf(s,
				       "%s%s \"%02d-%s-%04d "
				       "%02d:%02d:%02d +0000\"",
				       SEP(),
				       it->kind == FETCH_SAVEDATE
					       ? "SAVEDATE"
					       : "INTERNALDATE",
				       tm.tm_mday, mon[tm.tm_mon],
				       tm.tm_year + 1900, tm.tm_hour,
				       tm.tm_min, tm.tm_sec);
			break;
		}
		case FETCH_EMAILID:
			/* RFC 8474: the same bytes are stored once, so the
			   body id names the message across mailboxes. */
			session_printf(s, "%sEMAILID (M%016llx)", SEP(),
				       (unsigned long long)m->body_id);
			break;
		case FETCH_THREADID:
			session_printf(s, "%sTHREADID NIL", SEP());
			break;
		case FETCH_BODY: {
			size_t hlen = header_length(body, blen);
			session_printf(s, "%s", SEP());
			switch (it->section) {
			case SECTION_ALL:
				write_literal(is, it, body, blen);
				break;
			case SECTION_HEADER:
				write_literal(is, it, body, hlen);
				break;
			case SECTION_TEXT:
				write_literal(is, it, body + hlen, blen - hlen);
				break;
			case SECTION_HEADER_FIELDS:
			case SECTION_HEADER_FIELDS_NOT: {
				struct buf hb = BUF_INIT;
				header_fields(it, body, hlen, &hb);
				write_literal(is, it, buf_ptr(&hb),
					      buf_used(&hb));
				buf_free(&hb);
				break;
			}
			case SECTION_COUNT:
				abort();
			}
			break;
		}
		case FETCH_UID:
		case FETCH_FLAGS:
		case FETCH_KIND_COUNT:
			break;
		}
	}
#undef SEP
	session_write(s, ")\r\n", 3);
}

struct fetch_ctx {
	struct imap_cmd_ctx *cmd;
	struct fetch_req req;
	uint32_t *uids;
	size_t n;
	struct imap_range *ranges; /* the UID set, for VANISHED */
	unsigned nranges;
	struct store_flags_args seen;
};

/* Writes the FETCH responses for ctx->uids from a fresh snapshot. */
static void
fetch_respond(struct fetch_ctx *fc)
{
	struct imap_cmd_ctx *cmd = fc->cmd;
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	MDB_txn *txn = NULL;
	const char *err, *kwnames;
	size_t kwlen;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_keywords_get(st, txn, is->mbox.mbox_id, &kwnames, &kwlen,
			       &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	int need_body = 0;
	for (unsigned i = 0; i < fc->req.n; i++)
		if (fc->req.items[i].kind == FETCH_BODY)
			need_body = 1;
	if (fc->req.vanished) {
		/* RFC 7162 3.2.6: what was expunged since, within the set. */
		uint32_t *gone;
		size_t ngone;
		if (store_vanished_since(st, txn, is->mbox.mbox_id,
					 fc->req.changedsince, &gone, &ngone,
					 &err) == 0) {
			size_t k = 0;
			for (size_t i = 0; i < ngone; i++)
				if (imap_seqset_contains(fc->ranges,
							 fc->nranges, gone[i]))
					gone[k++] = gone[i];
			if (k > 0) {
				struct buf b = BUF_INIT;
				imap_uid_set_format(gone, k, &b);
				buf_append(&b, "", 1);
				imap_untagged(is, "VANISHED (EARLIER) %s",
					      buf_ptr(&b));
				buf_free(&b);
			}
			free(gone);
		}
	}
	for (size_t i = 0; i < fc->n; i++) {
		uint32_t uid = fc->uids[i];
		long idx = imap_uid_index(is, uid);
		if (idx < 0)
			continue;
		struct store_msg_rec m;
		int rc = store_message_get(st, txn, is->mbox.mbox_id, uid, &m,
					   &err);
		if (rc > 0)
			continue; /* expunged by another session */
		if (rc == 0 && fc->req.changedsince &&
		    m.modseq <= fc->req.changedsince)
			continue;
		const char *body = NULL;
		size_t blen = 0;
		if (rc == 0 && need_body)
			rc = store_body_get(st, txn, m.body_id, &body, &blen,
					    &err);
		if (rc < 0) {
			store_read_end(&txn);
			log_error("session=%s store error=\"%s\"", is->s->id,
				  err);
			imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
			return;
		}
		fetch_one(is, &fc->req, (uint32_t)idx + 1, uid, &m, body, blen,
			  kwnames, kwlen);
	}
	store_read_end(&txn);
	imap_tagged(cmd, "OK", "%sFETCH completed", cmd->uid ? "UID " : "");
}

static void
fetch_seen_done(void *ctx, int rc, const char *err)
{
	struct fetch_ctx *fc = ctx;
	if (rc != 0) {
		log_warn("session=%s setting \\Seen failed: %s",
			 fc->cmd->is->s->id, err);
	} else {
		for (size_t i = 0; i < fc->seen.n; i++)
			if (fc->seen.modseq[i] != 0)
				imap_own_change(fc->cmd->is, fc->seen.uids[i],
						fc->seen.modseq[i]);
		backend_mailbox_changed(fc->cmd->is->s->be,
					fc->cmd->is->mbox.mbox_id);
	}
	fetch_respond(fc);
}

void
imap_cmd_fetch(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct arena *a = &is->cmd_pool;
	struct fetch_ctx *fc = arena_zalloc(a, sizeof(*fc));
	struct fetch_req *req = &fc->req;
	if ((cmd->argc != 2 && cmd->argc != 3) ||
	    cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(cmd, "BAD", "Expected sequence set and items");
		return;
	}
	if (cmd->argc == 3) {
		/* RFC 7162: (CHANGEDSINCE modseq [VANISHED]) */
		const struct imap_arg *mod = &cmd->args[2];
		for (unsigned i = 0; mod->type == IMAP_ARG_LIST &&
				     i < mod->count;
		     i++) {
			const struct imap_arg *m = &mod->list[i];
			if (imap_arg_is_atom(m, "CHANGEDSINCE") &&
			    i + 1 < mod->count &&
			    mod->list[i + 1].type == IMAP_ARG_ATOM) {
				char *end;
				req->changedsince =
					strtoull(mod->list[i + 1].str, &end, 10);
				if (*end != '\0' || req->changedsince == 0)
					goto badmod;
				i++;
			} else if (imap_arg_is_atom(m, "VANISHED")) {
				req->vanished = 1;
			} else {
				goto badmod;
			}
		}
		if (mod->type != IMAP_ARG_LIST || req->changedsince == 0 ||
		    (req->vanished &&
		     (!cmd->uid || !(is->enabled & IMAP_ENABLE_QRESYNC))))
			goto badmod;
		is->enabled |= IMAP_ENABLE_CONDSTORE;
		req->want_modseq = 1;
		req->want_flags = 1;
	}
	const struct imap_arg *items = &cmd->args[1];
	int rc = 0;
	if (items->type == IMAP_ARG_LIST) {
		if (items->count == 0)
			rc = -1;
		for (unsigned i = 0; rc == 0 && i < items->count; i++)
			rc = parse_item(a, &items->list[i], req);
	} else {
		rc = parse_item(a, items, req);
	}
	if (rc == -2) {
		imap_tagged(cmd, "BAD", "Fetch item not supported");
		return;
	}
	if (rc < 0) {
		imap_tagged(cmd, "BAD", "Invalid fetch items");
		return;
	}
	if (cmd->uid)
		req->want_uid = 1;
	if (req->sets_seen && !is->readonly)
		req->want_flags = 1;
	if (req->want_modseq)
		is->enabled |= IMAP_ENABLE_CONDSTORE;
	if ((is->enabled & IMAP_ENABLE_CONDSTORE) && req->want_flags)
		req->want_modseq = 1;
	if (imap_set_uids(cmd, cmd->args[0].str, &fc->uids, &fc->n) < 0)
		return;
	if (req->vanished &&
	    imap_seqset_parse(cmd->args[0].str, 0xffffffffU, a, &fc->ranges,
			      &fc->nranges) < 0)
		goto badmod;
	fc->cmd = imap_cmd_keep(cmd);
	if (!req->sets_seen || is->readonly || fc->n == 0) {
		fetch_respond(fc);
		return;
	}
	/* BODY[...] without PEEK sets \Seen first (RFC 3501 6.4.5), durably,
	   so the FLAGS answered are the stored ones. */
	fc->seen.mbox_id = is->mbox.mbox_id;
	fc->seen.uids = fc->uids;
	fc->seen.n = fc->n;
	fc->seen.mode = STORE_FLAGS_ADD;
	fc->seen.flags = STORE_F_SEEN;
	fc->seen.modseq = arena_alloc(a, fc->n * sizeof(uint64_t));
	fc->seen.failed = arena_alloc(a, fc->n);
	session_store(is->s, store_op_flags, &fc->seen, fetch_seen_done, fc,
		      NULL);
	return;
badmod:
	imap_tagged(cmd, "BAD", "Invalid FETCH modifiers");
}
