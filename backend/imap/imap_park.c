/* imap_park.c - an IMAP session in IDLE or between commands handed to its
 * frontend, and taken up again (link version 5; proto/link.proto "Parked
 * IMAP sessions").
 *
 * What a session is then fits in a few hundred bytes: the selected
 * mailbox (by name and UIDVALIDITY), the view as runs of UIDs, the
 * HIGHESTMODSEQ and UIDNEXT the client was shown, the extensions it
 * enabled, the IDLE's tag, the SEARCHRES result and the client's ID.
 * Parked, it costs the backend a watch of the mailbox; taken up again it
 * answers with what changed meanwhile, as IDLE would have shown it.  The
 * mailbox is found again by name, within the account, and must have the
 * same UIDVALIDITY; else by its id, within the account (renamed while
 * the session was parked).  A session between commands watches no
 * mailbox while parked: like any session between commands it hears of
 * changes at its next command, which takes it up again.
 */
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"

#define IMAP_PARK_VERSION 1
#define IMAP_PARK_ENABLE_MASK                                                  \
	(IMAP_ENABLE_CONDSTORE | IMAP_ENABLE_QRESYNC | IMAP_ENABLE_UTF8 |      \
	 IMAP_ENABLE_REV2)

/* uids[0..n) as runs of (first, count) into out (room for 2n); returns
 * the number of values written. */
static size_t
runs_encode(const uint32_t *uids, size_t n, uint32_t *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && uids[j] == uids[j - 1] + 1 && uids[j] != 0)
			j++;
		out[k++] = uids[i];
		out[k++] = (uint32_t)(j - i);
		i = j;
	}
	return k;
}

/* The runs back into *uids_r (malloc'd, NULL when empty): each UID
 * below uidnext, ascending when ascending is set, no more of them than
 * uidnext; -1 if they are not. */
static int
runs_decode(const uint32_t *runs, size_t nruns, uint32_t uidnext, int ascending,
	    uint32_t **uids_r, size_t *n_r)
{
	size_t total = 0;
	uint64_t last = 0;
	*uids_r = NULL;
	*n_r = 0;
	if (nruns % 2 != 0)
		return -1;
	for (size_t i = 0; i < nruns; i += 2) {
		uint64_t first = runs[i], count = runs[i + 1];
		if (count == 0 || first == 0 || (ascending && first <= last) ||
		    first + count - 1 >= uidnext || total + count > uidnext)
			return -1;
		total += count;
		last = first + count - 1;
	}
	if (total == 0)
		return 0;
	uint32_t *uids = malloc(total * sizeof(*uids));
	if (uids == NULL)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < nruns; i += 2)
		for (uint32_t c = 0; c < runs[i + 1]; c++)
			uids[k++] = runs[i] + c;
	*uids_r = uids;
	*n_r = total;
	return 0;
}

/* An IMAP tag (RFC 9051: ASTRING-CHAR but "+"), as a client's IDLE had
 * it: what the session answers DONE with. */
static int
tag_ok(const char *t, size_t max)
{
	size_t n = strlen(t);
	if (n == 0 || n >= max)
		return 0;
	for (; *t != '\0'; t++)
		if (*t <= 0x20 || *t >= 0x7f || strchr("(){%*\"\\+", *t))
			return 0;
	return 1;
}

int
imap_park(struct imap_session *is)
{
	struct bsession *s = is->s;
	int selected = is->state == IMAP_STATE_SELECTED;
	int between = !is->idling;
	if (!imap_between_commands(is) || is->parking || !session_can_park(s) ||
	    is->withheld || is->nown > 0 || buf_used(&is->lp.cmd) > 0 ||
	    is->lp.literal_left > 0 ||
	    (!selected && is->state != IMAP_STATE_AUTHENTICATED))
		return 0;
	Portico__ImapPark p = PORTICO__IMAP_PARK__INIT;
	uint32_t *runs = NULL, *saved = NULL;
	p.version = IMAP_PARK_VERSION;
	p.selected = selected;
	p.enabled = is->enabled;
	p.idle_tag = between ? "" : is->idle_tag;
	p.between_commands = between;
	p.bad_commands = is->bad_commands;
	p.client_id = is->client_id;
	if (selected) {
		p.mbox_id = is->mbox.mbox_id;
		p.mbox_name = is->mbox_name;
		p.uidvalidity = is->mbox.uidvalidity;
		p.modseq = is->mbox.highestmodseq;
		p.uidnext = is->mbox.uidnext;
		p.readonly = is->readonly;
		runs = malloc((is->count ? is->count : 1) * 2 * sizeof(*runs));
		saved = malloc((is->nsaved ? is->nsaved : 1) * 2 *
			       sizeof(*saved));
		if (runs == NULL || saved == NULL)
			abort();
		p.n_uids = runs_encode(is->uids, is->count, runs);
		p.uids = runs;
		/* SEARCHRES keeps its order: runs of one where it is not
		   ascending */
		p.n_saved = runs_encode(is->saved, is->nsaved, saved);
		p.saved = saved;
	}
	size_t len = portico__imap_park__get_packed_size(&p);
	/* a view too scattered to carry stays here */
	size_t room = (size_t)s->be->cfg.limits_link_max_frame;
	if (len + 256 > room) {
		free(runs);
		free(saved);
		return 0;
	}
	uint8_t *state = malloc(len ? len : 1);
	if (state == NULL)
		abort();
	portico__imap_park__pack(&p, state);
	free(runs);
	free(saved);
	/* the watch: the mailbox IDLE shows, none between commands */
	int watch = selected && !between;
	uint64_t mbox_id = watch ? is->mbox.mbox_id : 0;
	uint64_t modseq = watch ? is->mbox.highestmodseq : 0;
	session_park(s, state, len, mbox_id, modseq, watch ? is->mbox_name : "",
		     watch ? is->mbox.uidvalidity : 0, between);
	free(state);
	is->parking = 1;
	return 1;
}

int
imap_parked(struct bsession *s, uint64_t *mbox_id_r, uint64_t *modseq_r)
{
	struct imap_session *is = s->state;
	/* input since the Park called it off (imap_input()) */
	if (is == NULL || !is->parking)
		return 0;
	int watch = is->state == IMAP_STATE_SELECTED && is->idling;
	*mbox_id_r = watch ? is->mbox.mbox_id : 0;
	*modseq_r = watch ? is->mbox.highestmodseq : 0;
	return 1;
}

int
imap_resume(struct imap_session *is, const Portico__Open *o,
	    const char **code_r, const char **reason_r)
{
	struct bsession *s = is->s;
	struct store *st = s->be->store;
	Portico__ImapPark *p = portico__imap_park__unpack(NULL, o->resume.len,
							  o->resume.data);
	if (p == NULL || p->version != IMAP_PARK_VERSION ||
	    (p->selected &&
	     (p->mbox_name == NULL || p->mbox_name[0] == '\0')) ||
	    (p->between_commands ? p->idle_tag[0] != '\0'
				 : !tag_ok(p->idle_tag, sizeof(is->idle_tag)))) {
		if (p != NULL)
			portico__imap_park__free_unpacked(p, NULL);
		*code_r = "CLIENTBUG";
		*reason_r = "Parked session not readable";
		return -1;
	}
	is->enabled = p->enabled & IMAP_PARK_ENABLE_MASK;
	is->bad_commands = p->bad_commands;
	imap_caps_apply(is, o->imap_capabilities_off, p->client_id);
	snprintf(is->idle_tag, sizeof(is->idle_tag), "%s", p->idle_tag);
	int p_between = p->between_commands;
	int gone = 0;
	if (p->selected) {
		struct store_mailbox_rec mb;
		MDB_txn *txn;
		const char *err;
		if (store_read_begin(st, &txn, &err) < 0) {
			log_error("session=%s store error=\"%s\"", s->id, err);
			portico__imap_park__free_unpacked(p, NULL);
			*code_r = "SERVERBUG";
			*reason_r = "Mail store unavailable";
			return -1;
		}
		char *name = p->mbox_name;
		char renamed[512]; /* a key of the store at most */
		int rc = store_mailbox_get(st, txn, is->user_num, name, &mb,
					   &err);
		if (rc > 0 || (rc == 0 && mb.uidvalidity != p->uidvalidity)) {
			uint64_t owner;
			rc = store_mailbox_name_by_id(st, txn, p->mbox_id,
						      &owner, renamed,
						      sizeof(renamed), &err);
			if (rc == 0 && owner != is->user_num)
				rc = 1; /* another account's, after a move */
			if (rc == 0) {
				name = renamed;
				rc = store_mailbox_get(st, txn, is->user_num,
						       name, &mb, &err);
			}
		}
		store_read_end(&txn);
		if (rc < 0) {
			log_error("session=%s store error=\"%s\"", s->id, err);
			portico__imap_park__free_unpacked(p, NULL);
			*code_r = "SERVERBUG";
			*reason_r = "Mail store error";
			return -1;
		}
		uint32_t *uids = NULL, *saved = NULL;
		size_t n = 0, nsaved = 0;
		if (rc > 0 || mb.uidvalidity != p->uidvalidity || mb.noselect) {
			gone = 1;
		} else if (p->uidnext > mb.uidnext ||
			   runs_decode(p->uids, p->n_uids, p->uidnext, 1, &uids,
				       &n) < 0 ||
			   runs_decode(p->saved, p->n_saved, p->uidnext, 0,
				       &saved, &nsaved) < 0) {
			/* the view holds UIDs the mailbox never gave: no
			   session of it could have been shown them (and
			   they bound what is allocated for it) */
			free(uids);
			portico__imap_park__free_unpacked(p, NULL);
			*code_r = "CLIENTBUG";
			*reason_r = "Parked session not readable";
			return -1;
		} else {
			is->mbox = mb;
			/* what the client was shown: imap_sync() tells it
			   the rest */
			is->mbox.highestmodseq = p->modseq;
			is->mbox.uidnext = p->uidnext;
			is->uids = uids;
			is->count = n;
			is->saved = saved;
			is->nsaved = nsaved;
			is->readonly = p->readonly;
			is->mbox_name = strdup(name);
			if (is->mbox_name == NULL)
				abort();
			imap_set_state(is, IMAP_STATE_SELECTED);
		}
	}
	portico__imap_park__free_unpacked(p, NULL);
	metrics_add(&s->be->resumed, 1);
	log_info("session=%s user=%s resumed%s", s->id, s->user,
		 gone ? " (mailbox gone)" : "");
	if (gone) {
		imap_untagged(is, "BYE [NONEXISTENT] Selected mailbox was "
				  "deleted");
		imap_set_state(is, IMAP_STATE_LOGOUT);
		session_end(s, "mailbox deleted");
		return 0;
	}
	if (p_between) {
		/* what changed is told at the command that follows */
		return 0;
	}
	is->idling = 1;
	is->idle_said_at = is->idle_since = uv_now(s->be->loop);
	if (is->state == IMAP_STATE_SELECTED) {
		backend_watch(s, is->mbox.mbox_id);
		imap_sync(is, 1);
	}
	return 0;
}
