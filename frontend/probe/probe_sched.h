/* probe_sched.h - connectivity probes on a schedule, run by a frontend
 * against its own listeners (settings [probe]).
 *
 * Every probe.interval, the first event loop probes each account of
 * probe.users over each protocol of probe.protocols, one probe at a
 * time, through the frontend's first listener of that protocol (TLS as
 * that listener has it: STARTTLS/STLS on imap_listen, pop3_listen and
 * submission_listen, implicit on the others).  Before an account's
 * probes, the directory says which backend holds its mailbox: that is
 * the backend label of its results.  Passwords come from
 * probe.password_file, read at each round.
 *
 * Results: each probe is logged (warn with the failing step and the
 * server's reply when it fails) and kept for /metrics:
 * portico_probe_success, portico_probe_duration_seconds (per step and
 * total), portico_probe_last_run_timestamp_seconds and
 * portico_probe_runs_total.  A scrape from any loop reads them under a
 * lock; only the first loop writes them.
 */
#ifndef PORTICO_PROBE_SCHED_H
#define PORTICO_PROBE_SCHED_H

#include "common/buf.h"

struct config;
struct frontend;
struct probe_sched;

/* Whether the [probe] settings of cfg can work (nothing to check when
 * probe.interval is 0): accounts, password file named, protocols known.
 * -1 and *error_r (naming the setting) otherwise.  For start, -t and
 * reloads. */
int probe_sched_check(const struct config *cfg, const char **error_r);

/* In the main thread, after fe's listeners are set up (fe is the first
 * loop): checks the [probe] settings and arms the schedule when
 * probe.interval is not 0 (fe->probe stays NULL otherwise).  -1 and
 * *error_r on a setting that cannot work. */
int probe_sched_start(struct frontend *fe, const char **error_r);
/* In fe's loop: cancels the probe in progress and the timer. */
void probe_sched_stop(struct frontend *fe);
/* After a reload moved the frontend's listeners (in its loop): each
 * protocol of probe.protocols is probed where its first listener is now,
 * as at start; one left without a listener is no longer probed, and one
 * that has a listener again is. */
void probe_sched_listeners_moved(struct frontend *fe);
/* After fe's loop has ended. */
void probe_sched_free(struct frontend *fe);
/* Appends the probe metrics of fe's process (nothing when probes are
 * off); fe may be any loop of the process. */
void probe_sched_metrics(const struct frontend *fe, struct buf *b);

#endif
