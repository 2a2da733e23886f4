/* frontend_metrics.c - what a frontend loop counts: connections by
 * protocol and state, logins by result, the latency of each phase of a
 * login, LDAP errors, link sessions and bytes.  Every update is made by
 * the loop's own thread (common/metrics.h); /metrics sums the loops. */
#include "frontend/frontend.h"

#include <string.h>

static const char *fm_login_names[FM_LOGIN_RESULTS] = {
	[LOGIN_FAIL_CREDENTIALS] = "fail",
	[LOGIN_FAIL_TEMPORARY] = "tempfail",
	[LOGIN_FAIL_DISABLED] = "disabled",
	[LOGIN_FAIL_PRIVILEGED] = "privileged",
	[LOGIN_FAIL_LIMIT] = "limit",
	[FM_LOGIN_OK] = "ok",
};

static const char *fm_state_names[CLIENT_STATE_COUNT] = {
    [CLIENT_PRELOGIN] = "prelogin", [CLIENT_AUTH] = "auth",
    [CLIENT_OPENING] = "opening",   [CLIENT_RELAY] = "relay",
    [CLIENT_LOCAL] = "local",       [CLIENT_CLOSING] = "closing",
};

const char *
frontend_metrics_login_name(unsigned result)
{
	return result < FM_LOGIN_RESULTS && fm_login_names[result] != NULL
		       ? fm_login_names[result]
		       : "other";
}

const char *
frontend_metrics_state_name(enum client_state s)
{
	return (unsigned)s < CLIENT_STATE_COUNT && fm_state_names[s] != NULL
		       ? fm_state_names[s]
		       : "other";
}

void
frontend_metrics_accept(struct client *c)
{
	struct frontend_metrics *m = &c->fe->metrics;
	if (m->protocol_name[c->protocol] == NULL)
		__atomic_store_n(&m->protocol_name[c->protocol],
				 c->proto->name, __ATOMIC_RELEASE);
	c->t_accept = c->t_mark = uv_hrtime();
	metrics_add(&m->accepted[c->protocol], 1);
	metrics_add(&m->connections[c->protocol][c->state], 1);
}

void
frontend_metrics_state(struct client *c, enum client_state to)
{
	struct frontend_metrics *m = &c->fe->metrics;
	metrics_sub(&m->connections[c->protocol][c->state], 1);
	metrics_add(&m->connections[c->protocol][to], 1);
}

void
frontend_metrics_closed(struct client *c)
{
	metrics_sub(&c->fe->metrics.connections[c->protocol][c->state], 1);
}

void
frontend_metrics_phase(struct client *c, enum fm_phase phase)
{
	uint64_t now = uv_hrtime();
	uint64_t from = phase == FM_PHASE_TOTAL ? c->t_accept : c->t_mark;
	if (from == 0 || now < from)
		return;
	metrics_observe(&c->fe->metrics.phase[c->protocol][phase],
			(now - from) / 1000);
	if (phase != FM_PHASE_TOTAL)
		c->t_mark = now;
}

void
frontend_metrics_login(struct frontend *fe, unsigned protocol,
		       unsigned result)
{
	if (protocol < FM_PROTOS && result < FM_LOGIN_RESULTS)
		metrics_add(&fe->metrics.logins[protocol][result], 1);
}

void
frontend_metrics_ldap_error(struct frontend *fe, const char *why)
{
	int timeout = why != NULL && strstr(why, "timeout") != NULL;
	metrics_add(&fe->metrics.ldap_errors[timeout ? FM_LDAP_TIMEOUT
						   : FM_LDAP_UNAVAILABLE],
		    1);
}
