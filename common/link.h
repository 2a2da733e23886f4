/* link.h - frames of the frontend <-> backend link.
 *
 * On the wire a frame is a 4-byte big-endian length and a packed
 * Portico__Frame (proto/link.proto).  These functions only encode and
 * decode; the link connections live in frontend/ and backend/.
 */
#ifndef PORTICO_LINK_H
#define PORTICO_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "link.pb-c.h"

/* Version 2: Ping and Pong.  Version 3: Forget.  Version 4: Forget
 * before the backend's Hello (the kicks it remembers).  Version 5: Park,
 * Watch and Open.resume (IMAP sessions parked at the frontend). */
#define LINK_VERSION "portico-link/5"
#define LINK_VERSION_PREFIX "portico-link/"

/* The number of a peer's Hello version ("portico-link/N"), 0 if it has
 * none. */
unsigned link_version_number(const char *version);

/* Appends one frame to out. */
void link_frame_pack(const Portico__Frame *f, struct buf *out);
/* Takes one frame off the front of in.  Returns 1 with *frame_r (free it
 * with link_frame_free()), 0 if more bytes are needed, -1 with *error_r
 * if the stream is invalid (the link must be closed). */
int link_frame_next(struct buf *in, size_t max_frame,
		    Portico__Frame **frame_r, const char **error_r);
void link_frame_free(Portico__Frame **frame);

/* Helpers that build and append one frame. */
void link_send_data(struct buf *out, uint32_t stream, const void *data,
		    size_t len);
void link_send_credit(struct buf *out, uint32_t stream, uint32_t bytes);
void link_send_close(struct buf *out, uint32_t stream, const char *reason);
/* Ping (pong 0) or Pong (pong 1) on stream 0. */
void link_send_ping(struct buf *out, uint64_t seq, int pong);
/* Forget on stream 0 (backend to frontend, version 3); age_ms: how long
 * ago the kick was made (0: now). */
void link_send_forget(struct buf *out, const char *mailbox_id, uint64_t age_ms);

#endif
