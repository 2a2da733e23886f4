/* sendrate.h - recipients submitted per sender over a sliding hour
 * (transport.max_recipients_per_hour; sendrate.c). */
#ifndef PORTICO_SENDRATE_H
#define PORTICO_SENDRATE_H

#include <stddef.h>
#include <stdint.h>

struct sendrate_table;

/* 1 if the sender (mailbox id) may submit to n more recipients at
 * now_ms, which are then counted; 0 if its count over the last hour and
 * n would pass limit.  *used_r: the count (with n when 1).  limit 0:
 * always 1, nothing counted.  *tp is created on first use. */
int sendrate_count(struct sendrate_table **tp, uint64_t limit,
		   const char *mailbox_id, unsigned n, uint64_t now_ms,
		   uint64_t *used_r);
/* Forgets senders with nothing in the hour before now_ms; returns how
 * many are left. */
size_t sendrate_expire(struct sendrate_table *t, uint64_t now_ms);
void sendrate_table_free(struct sendrate_table **tp);

#endif
