/* smtp_mail.c - MAIL and RCPT (RFC 5321 4.1.1.2-3) with their ESMTP
 * parameters.  Submission: the sender must be one of the authenticated
 * user's addresses (mail values in the directory); recipients are the
 * backend transport's to route.  LMTP: each recipient is looked up in the
 * directory (RFC 2033 4.2: unknown users refused at RCPT). */
#include "frontend/smtp/smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

const char *
smtp_addr_print(const char *addr, char *out, size_t outsize)
{
	size_t o = 0;
	for (const char *p = addr; *p != '\0' && o + 1 < outsize; p++)
		out[o++] = (*p >= 32 && *p < 127) ? *p : '?';
	out[o] = '\0';
	return out;
}

void
smtp_cmd_mail(struct smtp_session *s, const char *args)
{
	struct client *c = s->c;
	char pa[SMTP_MAX_PATH + 1];
	if (s->helo[0] == '\0') {
		smtp_reply(s, 503, "5.5.1", "Send %s first",
			   s->lmtp ? "LHLO" : "EHLO or HELO");
		smtp_count_error(s);
		return;
	}
	if (!s->lmtp && !s->authenticated) {
		smtp_reply(s, 530, "5.7.0", "Authentication required");
		smtp_count_error(s);
		return;
	}
	if (s->state != SMTP_S_IDLE) {
		smtp_reply(s, 503, "5.5.1", "Nested MAIL command");
		smtp_count_error(s);
		return;
	}
	struct smtp_offer offer;
	struct smtp_reply err;
	smtp_offer(s, &offer);
	if (smtp_parse_mail(args, &offer, &s->mail, &err) < 0) {
		smtp_reply(s, err.code, err.status, "%s", err.text);
		smtp_count_error(s);
		return;
	}
	smtp_addr_print(s->mail.path, pa, sizeof(pa));
	if (!s->lmtp && !dir_user_has_address(&c->duser, s->mail.path)) {
		log_info("session=%s user=%s sender refused from=<%s>", c->id,
			 c->user, pa);
		smtp_reply(s, 553, "5.7.1", "Sender address rejected: <%s> is "
					    "not an address of %s",
			   pa, c->user);
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_count_error(s);
		return;
	}
	smtp_set_state(s, SMTP_S_MAIL);
	smtp_reply(s, 250, "2.1.0", "Sender <%s> OK", pa);
}

static struct smtp_recipient *
smtp_add_rcpt(struct smtp_session *s, const struct smtp_rcpt *r)
{
	if (s->nrcpt == s->rcpt_cap) {
		unsigned cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
		struct smtp_recipient *n = realloc(s->rcpts,
						   cap * sizeof(*n));
		if (n == NULL)
			abort();
		s->rcpts = n;
		s->rcpt_cap = cap;
	}
	struct smtp_recipient *e = &s->rcpts[s->nrcpt++];
	memset(e, 0, sizeof(*e));
	e->rcpt = *r;
	smtp_set_state(s, SMTP_S_RCPT);
	return e;
}

/* LMTP: the directory's answer for the recipient of the RCPT waiting. */
static void
lmtp_rcpt_found(void *ctx, enum dir_result res, const struct dir_user *u,
		const char *why)
{
	struct smtp_session *s = ctx;
	struct client *c = s->c;
	char pa[SMTP_MAX_PATH + 1];
	s->lookup = NULL;
	c->hold = 0;
	smtp_addr_print(s->pending_rcpt.path, pa, sizeof(pa));
	if (res == DIR_TEMPFAIL) {
		log_warn("session=%s rcpt=<%s> directory error=\"%s\"", c->id,
			 pa, why ? why : "");
		smtp_reply(s, 451, "4.4.3", "Directory unavailable; try again "
					    "later");
	} else if (res == DIR_FAIL) {
		log_info("session=%s rcpt=<%s> refused: %s", c->id, pa,
			 why ? why : "unknown");
		smtp_reply(s, 550, "5.1.1", "<%s>: user unknown", pa);
	} else if (!u->privileged &&
		   strcasecmp(u->account_state, "moving") == 0) {
		/* Its mailbox is going to another backend (OPERATIONS.md):
		   the sender's MTA tries again, and finds the new one. */
		log_info("session=%s rcpt=<%s> deferred: account moving", c->id,
			 pa);
		smtp_reply(s, 450, "4.2.1",
			   "<%s>: mailbox being moved; try "
			   "again later",
			   pa);
	} else if ((u->account_state[0] != '\0' &&
		    strcasecmp(u->account_state, "active") != 0) ||
		   u->privileged) {
		log_info("session=%s rcpt=<%s> refused: account %s", c->id,
			 pa, u->privileged ? "privileged" : u->account_state);
		smtp_reply(s, 550, "5.2.1", "<%s>: mailbox disabled", pa);
	} else if (u->mailbox_server[0] == '\0' || u->mailbox_id[0] == '\0') {
		log_warn("session=%s rcpt=<%s> has no mailbox server", c->id,
			 pa);
		smtp_reply(s, 451, "4.3.0", "<%s>: no mailbox server for this "
					    "account",
			   pa);
	} else {
		struct smtp_recipient *e = smtp_add_rcpt(s, &s->pending_rcpt);
		snprintf(e->backend, sizeof(e->backend), "%s",
			 u->mailbox_server);
		snprintf(e->mailbox_id, sizeof(e->mailbox_id), "%s",
			 u->mailbox_id);
		e->quota_storage_set = u->quota_storage_set;
		e->quota_storage = u->quota_storage;
		e->quota_messages_set = u->quota_messages_set;
		e->quota_messages = u->quota_messages;
		e->auto_reply = dir_auto_reply_copy(u);
		if (e->auto_reply != NULL && e->auto_reply->off != NULL)
			log_warn("session=%s rcpt=<%s> automatic reply off: "
				 "%s",
				 c->id, pa, e->auto_reply->off);
		e->forward = dir_forward_copy(u);
		if (e->forward != NULL && e->forward->off != NULL)
			log_warn("session=%s rcpt=<%s> forwarding off (mail "
				 "kept): %s",
				 c->id, pa, e->forward->off);
		smtp_reply(s, 250, "2.1.5", "<%s> OK", pa);
	}
	client_resume(c);
}

void
smtp_cmd_rcpt(struct smtp_session *s, const char *args)
{
	struct client *c = s->c;
	char pa[SMTP_MAX_PATH + 1];
	if (s->state != SMTP_S_MAIL && s->state != SMTP_S_RCPT) {
		smtp_reply(s, 503, "5.5.1", "Need MAIL command");
		smtp_count_error(s);
		return;
	}
	if (s->nrcpt >= (unsigned)c->fe->cfg.smtp_max_recipients) {
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	struct smtp_offer offer;
	struct smtp_reply err;
	struct smtp_rcpt r;
	smtp_offer(s, &offer);
	if (smtp_parse_rcpt(args, &offer, &r, &err) < 0) {
		smtp_reply(s, err.code, err.status, "%s", err.text);
		smtp_count_error(s);
		return;
	}
	smtp_addr_print(r.path, pa, sizeof(pa));
	if (!s->mail.smtputf8) {
		for (const char *p = r.path; *p != '\0'; p++) {
			if ((unsigned char)*p >= 0x80) {
				smtp_reply(s, 553, "5.6.7",
					   "Non-ASCII address without "
					   "SMTPUTF8");
				smtp_count_error(s);
				return;
			}
		}
	}
	if (!s->lmtp) {
		smtp_add_rcpt(s, &r);
		smtp_reply(s, 250, "2.1.5", "Recipient <%s> OK", pa);
		return;
	}
	if (strchr(r.path, '@') == NULL) {
		/* <Postmaster> without a domain: which one is unknown. */
		smtp_reply(s, 550, "5.1.1", "<%s>: user unknown", pa);
		return;
	}
	s->pending_rcpt = r;
	c->hold = 1;
	s->lookup = dir_lookup_recipient(c->fe->dir, r.path, lmtp_rcpt_found,
					 s);
}
