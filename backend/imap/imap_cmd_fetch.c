/* imap_cmd_fetch.c - FETCH and UID FETCH. */
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/mime/mime.h"
#include "common/log.h"
#include "common/utc.h"

enum fetch_kind {
	FETCH_UID,
	FETCH_FLAGS,
	FETCH_SIZE,
	FETCH_INTERNALDATE,
	FETCH_SAVEDATE,
	FETCH_PREVIEW,
	FETCH_EMAILID,
	FETCH_THREADID,
	FETCH_ENVELOPE,
	FETCH_BODYSTRUCTURE,
	FETCH_BODY_NOEXT,  /* BODY without a section: BODYSTRUCTURE without
			      extension data */
	FETCH_BODY,        /* BODY[section]<partial>, RFC822* */
	FETCH_BINARY,      /* BINARY[part]<partial> (RFC 3516) */
	FETCH_BINARY_SIZE, /* BINARY.SIZE[part] */
	FETCH_KIND_COUNT
};

struct fetch_item {
	enum fetch_kind kind;
	int peek;
	const char *spec;       /* between the brackets */
	size_t spec_len;
	struct mime_spec *parsed; /* BODY[]: spec, parsed once */
	const char *reply_name; /* e.g. "BODY[HEADER]" or "RFC822" */
	int partial;
	uint64_t offset, length;
};

struct fetch_req {
	struct fetch_item *items;
	unsigned n, cap;
	int want_flags, sets_seen, want_uid, want_modseq;
	int need_body;          /* the message's octets */
	int need_mime;          /* its MIME structure (and octets) */
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

/* Checks a BINARY[] part spec against an empty message: the syntax
 * errors are found before any response is sent (a BAD must come alone);
 * a BODY[] spec is parsed once instead (mime_spec_parse). */
static int
section_valid(struct arena *a, const char *spec, size_t len)
{
	struct mime_msg *m;
	struct mime_section sec;
	const char *err;
	if (mime_parse(a, "", 0, &m, &err) < 0)
		return 0;
	return mime_section_binary(m, "", 0, spec, len, a, &sec, &err) !=
	       MIME_ERR_SYNTAX;
}

/* BODY[...], BODY.PEEK[...], BINARY[...], BINARY.PEEK[...],
 * BINARY.SIZE[...], each with <offset.count> where allowed. */
static int
parse_section_item(struct arena *a, const char *atom, struct fetch_req *req)
{
	const char *open = strchr(atom, '[');
	const char *close = strrchr(atom, ']');
	if (open == NULL || close == NULL || close < open)
		return -1;
	size_t head = (size_t)(open - atom);
	enum fetch_kind kind;
	int peek = 0;
	const char *name;
	if (head == 4 && strncasecmp(atom, "BODY", 4) == 0) {
		kind = FETCH_BODY, name = "BODY";
	} else if (head == 9 && strncasecmp(atom, "BODY.PEEK", 9) == 0) {
		kind = FETCH_BODY, name = "BODY", peek = 1;
	} else if (head == 6 && strncasecmp(atom, "BINARY", 6) == 0) {
		kind = FETCH_BINARY, name = "BINARY";
	} else if (head == 11 && strncasecmp(atom, "BINARY.PEEK", 11) == 0) {
		kind = FETCH_BINARY, name = "BINARY", peek = 1;
	} else if (head == 11 && strncasecmp(atom, "BINARY.SIZE", 11) == 0) {
		kind = FETCH_BINARY_SIZE, name = "BINARY.SIZE", peek = 1;
	} else {
		return -1;
	}
	struct fetch_item *it = fetch_add(a, req, kind);
	it->peek = peek;
	it->spec = open + 1;
	it->spec_len = (size_t)(close - it->spec);
	if (kind == FETCH_BODY) {
		const char *err;
		if (mime_spec_parse(a, it->spec, it->spec_len, &it->parsed,
				    &err) != MIME_OK)
			return -1;
	} else if (!section_valid(a, it->spec, it->spec_len)) {
		return -1;
	}
	const char *rest = close + 1;
	if (*rest == '<' && kind != FETCH_BINARY_SIZE) {
		char *end;
		if (rest[1] < '0' || rest[1] > '9')
			return -1;
		unsigned long long off = strtoull(rest + 1, &end, 10);
		if (*end != '.')
			return -1;
		const char *lp = end + 1;
		if (*lp < '0' || *lp > '9')
			return -1;
		unsigned long long len = strtoull(lp, &end, 10);
		if (*end != '>' || end[1] != '\0' || len == 0)
			return -1;
		it->partial = 1;
		it->offset = off;
		it->length = len;
	} else if (*rest != '\0') {
		return -1;
	}
	/* The reply names the section without PEEK, with the offset only. */
	it->reply_name = arena_printf(a, "%s[%.*s]", name, (int)it->spec_len,
				      it->spec);
	if (it->partial)
		it->reply_name = arena_printf(a, "%s<%llu>", it->reply_name,
					      (unsigned long long)it->offset);
	if (!peek)
		req->sets_seen = 1;
	req->need_body = 1;
	if (kind != FETCH_BODY || !mime_spec_whole(it->parsed))
		req->need_mime = 1;
	return 0;
}

static struct fetch_item *
add_rfc822(struct arena *a, struct fetch_req *req, const char *spec,
	   const char *reply, int peek)
{
	struct fetch_item *it = fetch_add(a, req, FETCH_BODY);
	it->spec = spec;
	it->spec_len = strlen(spec);
	it->reply_name = reply;
	it->peek = peek;
	/* The spec is one of ours: "", "HEADER" or "TEXT". */
	const char *err;
	if (mime_spec_parse(a, it->spec, it->spec_len, &it->parsed, &err) !=
	    MIME_OK)
		abort();
	if (!peek)
		req->sets_seen = 1;
	req->need_body = 1;
	if (!mime_spec_whole(it->parsed))
		req->need_mime = 1;
	return it;
}

static int
parse_item(struct arena *a, const struct imap_arg *arg, struct fetch_req *req)
{
	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	const char *s = arg->str;
	if (strchr(s, '[') != NULL)
		return parse_section_item(a, s, req);
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
	} else if (strcasecmp(s, "PREVIEW") == 0) {
		fetch_add(a, req, FETCH_PREVIEW);
		req->need_mime = 1;
	} else if (strcasecmp(s, "EMAILID") == 0) {
		fetch_add(a, req, FETCH_EMAILID);
	} else if (strcasecmp(s, "THREADID") == 0) {
		fetch_add(a, req, FETCH_THREADID);
	} else if (strcasecmp(s, "ENVELOPE") == 0) {
		fetch_add(a, req, FETCH_ENVELOPE);
		req->need_mime = 1;
	} else if (strcasecmp(s, "BODYSTRUCTURE") == 0) {
		fetch_add(a, req, FETCH_BODYSTRUCTURE);
		req->need_mime = 1;
	} else if (strcasecmp(s, "BODY") == 0) {
		fetch_add(a, req, FETCH_BODY_NOEXT);
		req->need_mime = 1;
	} else if (strcasecmp(s, "FAST") == 0 || strcasecmp(s, "ALL") == 0 ||
		   strcasecmp(s, "FULL") == 0) {
		/* Macros (RFC 3501 6.4.5). */
		req->want_flags = 1;
		fetch_add(a, req, FETCH_INTERNALDATE);
		fetch_add(a, req, FETCH_SIZE);
		if (strcasecmp(s, "FAST") != 0) {
			fetch_add(a, req, FETCH_ENVELOPE);
			req->need_mime = 1;
		}
		if (strcasecmp(s, "FULL") == 0)
			fetch_add(a, req, FETCH_BODY_NOEXT);
	} else if (strcasecmp(s, "RFC822") == 0) {
		add_rfc822(a, req, "", "RFC822", 0);
	} else if (strcasecmp(s, "RFC822.HEADER") == 0) {
		add_rfc822(a, req, "HEADER", "RFC822.HEADER", 1);
	} else if (strcasecmp(s, "RFC822.TEXT") == 0) {
		add_rfc822(a, req, "TEXT", "RFC822.TEXT", 0);
	} else {
		return -1;
	}
	return 0;
}

/* Writes a section as a literal (literal8 when it holds NULs: BINARY). */
/* A literal may not hold NUL (RFC 9051 9: CHAR8); only BINARY's literal8
 * may.  A stored message with one (a BINARY APPEND's, say) is sent with
 * each NUL as 0x80, the way Dovecot does. */
static void
write_without_nul(struct bsession *s, const char *p, size_t n)
{
	const char *end = p + n;
	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL) {
			session_write(s, p, (size_t)(end - p));
			return;
		}
		if (z > p)
			session_write(s, p, (size_t)(z - p));
		session_write(s, "\x80", 1);
		p = z + 1;
	}
}

static void
write_section(struct imap_session *is, const struct fetch_item *it,
	      const struct mime_section *sec)
{
	uint64_t off = 0, count = sec->size;
	if (it->partial) {
		off = it->offset < sec->size ? it->offset : sec->size;
		count = sec->size - off;
		if (count > it->length)
			count = it->length;
	}
	int nul = 0;
	if (it->kind == FETCH_BINARY) {
		for (unsigned i = 0; i < sec->nchunks && !nul; i++)
			nul = memchr(sec->chunks[i].data, '\0',
				     sec->chunks[i].len) != NULL;
	}
	session_printf(is->s, "%s %s{%llu}\r\n", it->reply_name, nul ? "~" : "",
		       (unsigned long long)count);
	/* The chunks point into the message: no copy beyond the output. */
	uint64_t pos = 0;
	for (unsigned i = 0; i < sec->nchunks && count > 0; i++) {
		const struct mime_chunk *c = &sec->chunks[i];
		if (pos + c->len <= off) {
			pos += c->len;
			continue;
		}
		size_t start = off > pos ? (size_t)(off - pos) : 0;
		size_t n = c->len - start;
		if (n > count)
			n = (size_t)count;
		if (it->kind == FETCH_BINARY)
			session_write(is->s, c->data + start, n);
		else
			write_without_nul(is->s, c->data + start, n);
		count -= n;
		pos += c->len;
	}
}

/* The answer to one message; returns -1 (after a tagged NO) when a
 * BINARY part has an unknown encoding. */
static int
fetch_one(struct imap_cmd_ctx *cmd, const struct fetch_req *req, uint32_t seq,
	  uint32_t uid, const struct store_msg_rec *m, const char *body,
	  size_t blen, const struct mime_msg *mm, const char *kwnames,
	  size_t kwlen, struct arena *a)
{
	struct imap_session *is = cmd->is;
	struct bsession *s = is->s;
	int first = 1;
	/* Sections are computed first: an unknown encoding must not leave a
	   half-written response. */
	struct mime_section *secs = NULL;
	if (req->need_body) {
		/* The record knows when there are no bare LFs to convert. */
		unsigned opts = m->flags & STORE_F_CRLF ? MIME_SEC_CRLF : 0;
		secs = arena_zalloc(a, req->n * sizeof(*secs));
		for (unsigned i = 0; i < req->n; i++) {
			const struct fetch_item *it = &req->items[i];
			const char *err;
			int rc = MIME_OK;
			if (it->kind == FETCH_BODY &&
			    mime_spec_whole(it->parsed))
				mime_section_whole(body, blen, opts, a,
						   &secs[i]);
			else if (it->kind == FETCH_BODY)
				rc = mime_section_fetch_parsed(
				    mm, body, blen, it->parsed, opts, a,
				    &secs[i], &err);
			else if (it->kind == FETCH_BINARY ||
				 it->kind == FETCH_BINARY_SIZE)
				rc = mime_section_binary(mm, body, blen,
							 it->spec, it->spec_len,
							 a, &secs[i], &err);
			if (rc == MIME_ERR_UNKNOWN_CTE) {
				imap_tagged(cmd, "NO", "[UNKNOWN-CTE] Cannot "
						       "decode this part");
				return -1;
			}
			if (rc != MIME_OK) {
				log_error("session=%s uid=%u mime error=\"%s\"",
					  s->id, uid, err);
				imap_tagged(cmd, "NO", "[SERVERBUG] Cannot read "
						       "this message");
				return -1;
			}
		}
	}
	/* The items most asked for (a client's flag sync asks for nothing
	   else, for every message) are written without printf. */
	session_write(s, "* ", 2);
	session_put_uint(s, seq);
	session_write(s, " FETCH (", 8);
#define SEP() (first ? (first = 0, "") : " ")
	if (req->want_uid) {
		session_puts(s, SEP());
		session_write(s, "UID ", 4);
		session_put_uint(s, uid);
	}
	if (req->want_flags) {
		session_puts(s, SEP());
		session_write(s, "FLAGS ", 6);
		imap_write_flags(is, m->flags, m->keywords, kwnames, kwlen);
	}
	if (req->want_modseq) {
		session_puts(s, SEP());
		session_write(s, "MODSEQ (", 8);
		session_put_uint(s, m->modseq);
		session_write(s, ")", 1);
	}
	struct buf tmp = BUF_INIT;
	for (unsigned i = 0; i < req->n; i++) {
		const struct fetch_item *it = &req->items[i];
		switch (it->kind) {
		case FETCH_SIZE:
			session_puts(s, SEP());
			session_write(s, "RFC822.SIZE ", 12);
			session_put_uint(s, m->size);
			break;
		case FETCH_INTERNALDATE:
		case FETCH_SAVEDATE: {
			static const char *mon[] = {"Jan", "Feb", "Mar", "Apr",
						    "May", "Jun", "Jul", "Aug",
						    "Sep", "Oct", "Nov", "Dec"};
			int64_t when = it->kind == FETCH_SAVEDATE
					   ? m->savedate
					   : m->internaldate;
			char dt[26];
			size_t dtlen = utc_imap_date_time(when, dt);
			if (dtlen > 0) {
				session_puts(s, SEP());
				session_puts(s, it->kind == FETCH_SAVEDATE
						    ? "SAVEDATE \""
						    : "INTERNALDATE \"");
				session_write(s, dt, dtlen);
				session_write(s, "\"", 1);
				break;
			}
			struct tm tm;
			time_t t = (time_t)when;
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
		case FETCH_PREVIEW: {
			/* RFC 8970: computed here, so never NIL (LAZY or
			   not); "" for a message without text */
			struct buf pv = BUF_INIT;
			buf_reset(&tmp);
			mime_preview(mm, body, blen, &pv);
			mime_imap_string(&tmp,
					 buf_used(&pv) ? buf_ptr(&pv) : "",
					 buf_used(&pv));
			buf_free(&pv);
			session_printf(s, "%sPREVIEW ", SEP());
			session_write(s, buf_ptr(&tmp), buf_used(&tmp));
			break;
		}
		case FETCH_ENVELOPE:
		case FETCH_BODYSTRUCTURE:
		case FETCH_BODY_NOEXT:
			buf_reset(&tmp);
			if (it->kind == FETCH_ENVELOPE)
				mime_imap_envelope(mm, &tmp);
			else if (it->kind == FETCH_BODYSTRUCTURE)
				mime_imap_bodystructure(mm, &tmp);
			else
				mime_imap_body(mm, &tmp);
			session_printf(s, "%s%s ", SEP(),
				       it->kind == FETCH_ENVELOPE
					       ? "ENVELOPE"
					       : it->kind == FETCH_BODYSTRUCTURE
							 ? "BODYSTRUCTURE"
							 : "BODY");
			session_write(s, buf_ptr(&tmp), buf_used(&tmp));
			break;
		case FETCH_BODY:
		case FETCH_BINARY:
			session_printf(s, "%s", SEP());
			write_section(is, it, &secs[i]);
			break;
		case FETCH_BINARY_SIZE:
			session_printf(s, "%s%s %llu", SEP(), it->reply_name,
				       (unsigned long long)secs[i].size);
			break;
		case FETCH_UID:
		case FETCH_FLAGS:
		case FETCH_KIND_COUNT:
			break;
		}
	}
	buf_free(&tmp);
#undef SEP
	session_write(s, ")\r\n", 3);
	return 0;
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
	struct store_msg_reader rd = {0};
	const char *err, *kwnames;
	size_t kwlen;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_keywords_get(st, txn, is->mbox.mbox_id, &kwnames, &kwlen,
			       &err) < 0 ||
	    store_msg_reader_open(st, txn, is->mbox.mbox_id, &rd, &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	int need_body = fc->req.need_body || fc->req.need_mime;
	/* Per-message memory, cleared for each message of the set. */
	struct arena mp;
	arena_init(&mp, 16384);
	if (fc->req.vanished) {
		/* RFC 7162 3.2.6: what was expunged since, within the set. */
		uint32_t *gone;
		size_t ngone;
		int exact;
		if (store_vanished_since(st, txn, is->mbox.mbox_id,
					 fc->req.changedsince, &gone, &ngone,
					 &exact, &err) == 0 &&
		    !exact) {
			/* Fewer records kept than asked for: every UID of the
			   set that is not here (RFC 7162 3.2.6 lets the
			   answer name UIDs the client knows are gone). */
			struct buf b = BUF_INIT;
			if (imap_uid_set_absent(fc->ranges, fc->nranges,
						is->mbox.uidnext, is->uids,
						is->count, &b) > 0) {
				buf_append(&b, "", 1);
				imap_untagged(is, "VANISHED (EARLIER) %s",
					      buf_ptr(&b));
			}
			buf_free(&b);
			free(gone);
		} else if (exact) {
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
	size_t next = 0; /* the index after the last message answered */
	int gone = 0;    /* a message of the view was expunged by another */
	for (size_t i = 0; i < fc->n; i++) {
		uint32_t uid = fc->uids[i];
		/* The set is most often a run of the view: the next one. */
		long idx = next < is->count && is->uids[next] == uid
			       ? (long)next
			       : imap_uid_index(is, uid);
		if (idx < 0)
			continue;
		next = (size_t)idx + 1;
		struct store_msg_rec m;
		int rc = store_msg_reader_get(&rd, uid, &m, &err);
		if (rc > 0) {
			gone = 1; /* expunged by another session */
			continue;
		}
		if (rc == 0 && fc->req.changedsince &&
		    m.modseq <= fc->req.changedsince)
			continue;
		const char *body = NULL;
		size_t blen = 0;
		if (rc == 0 && need_body)
			rc = store_body_get(st, txn, m.body_id, &body, &blen,
					    &err);
		if (rc < 0) {
			store_msg_reader_close(&rd);
			store_read_end(&txn);
			arena_free(&mp);
			log_error("session=%s store error=\"%s\"", is->s->id,
				  err);
			imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
			return;
		}
		struct mime_msg *mm = NULL;
		if (need_body)
			arena_clear(&mp);
		if (fc->req.need_mime) {
			const void *blob;
			size_t bloblen;
			const char *merr;
			int mrc = store_bodymeta_get(st, txn, m.body_id, &blob,
						     &bloblen, &err);
			/* The structure computed at delivery; messages stored
			   without one are parsed now. */
			if (mrc != 0 || mime_cache_load(&mp, blob, bloblen,
							blen, &mm, &merr) < 0)
				mime_parse(&mp, body, blen, &mm, &merr);
			if (mm == NULL) {
				store_msg_reader_close(&rd);
				store_read_end(&txn);
				arena_free(&mp);
				imap_tagged(cmd, "NO", "[LIMIT] Message too "
						       "large to parse");
				return;
			}
		}
		if (fetch_one(cmd, &fc->req, (uint32_t)idx + 1, uid, &m, body,
			      blen, mm, kwnames, kwlen, &mp) < 0) {
			store_msg_reader_close(&rd);
			store_read_end(&txn);
			arena_free(&mp);
			return;
		}
	}
	store_msg_reader_close(&rd);
	store_read_end(&txn);
	arena_free(&mp);
	/* RFC 2180 4.1, RFC 5530: the others' data is sent and the client
	   told why some is missing; the EXPUNGE comes with its next command
	   that allows one. */
	imap_tagged(cmd, "OK", "%s%sFETCH completed",
		    gone ? "[EXPUNGEISSUED] Some messages were expunged; " : "",
		    cmd->uid ? "UID " : "");
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
		for (unsigned i = 0; rc == 0 && i < items->count; i++) {
			const struct imap_arg *it = &items->list[i];
			rc = parse_item(a, it, req);
			/* PREVIEW (LAZY): RFC 8970's one modifier */
			if (rc == 0 && it->type == IMAP_ARG_ATOM &&
			    strcasecmp(it->str, "PREVIEW") == 0 &&
			    i + 1 < items->count &&
			    items->list[i + 1].type == IMAP_ARG_LIST) {
				const struct imap_arg *mods = &items->list[++i];
				for (unsigned k = 0; rc == 0 && k < mods->count;
				     k++)
					if (!imap_arg_is_atom(&mods->list[k],
							      "LAZY"))
						rc = -1;
			}
		}
	} else {
		rc = parse_item(a, items, req);
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
