/* mime.h - MIME structure of a stored message, for FETCH and SEARCH.
 *
 * A message is parsed once, at delivery, into a compact blob (the "MIME
 * cache") that the store keeps beside the message.  Everything FETCH needs -
 * ENVELOPE, BODY, BODYSTRUCTURE, the byte ranges of BODY[section] and the
 * decoded content of BINARY[part] - is then produced from the blob and the
 * message bytes without parsing the message again.
 *
 *	struct buf blob = BUF_INIT;
 *	mime_cache_build(msg, len, &blob);          at delivery, stored
 *	...
 *	struct mime_msg *m;
 *	if (mime_cache_load(a, blob, blob_len, len, &m, &error) < 0)
 *		... corrupt: rebuild with mime_parse() ...
 *	mime_imap_bodystructure(m, out);
 *	mime_section_fetch(m, msg, len, "1.2.MIME", 8, a, &sec, &error);
 *
 * Answers follow RFC 3501 / RFC 9051 the way Dovecot writes them (same
 * quoting, same defaults, same handling of broken MIME).  Differences:
 *  - sizes are those of the message with every bare LF counted as CRLF, and
 *    section contents are sent with bare LFs turned into CRLF, so that the
 *    octets announced always match the octets sent;
 *  - a part that the limits below stop from being parsed (too deep, too
 *    many parts) and that is declared multipart/... or message/... is
 *    written as a text/plain leaf, keeping BODYSTRUCTURE well-formed.
 *
 * Messages are bytes with CRLF line ends; bare LF is tolerated everywhere.
 * The parser never fails on content: any input gives a structure.
 */
#ifndef PORTICO_MIME_H
#define PORTICO_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"

/* -- limits (compile-time settings; tests may build with smaller ones) ----- */

/* Nesting levels of the part tree, the message itself being level 1.  A
 * multipart or message/rfc822 part that would nest deeper is a leaf. */
#ifndef MIME_MAX_DEPTH
#define MIME_MAX_DEPTH 100
#endif
/* Parts in one message, the message itself included.  The part that
 * reaches the limit takes all the remaining bytes as its body. */
#ifndef MIME_MAX_PARTS
#define MIME_MAX_PARTS 10000
#endif
/* Addresses kept per address header (From, To, ...); the rest is ignored. */
#ifndef MIME_MAX_ADDRESSES
#define MIME_MAX_ADDRESSES 10000
#endif
/* Longest multipart boundary kept; longer ones are truncated (Dovecot). */
#define MIME_BOUNDARY_MAX 80
/* Strings longer than this are written as IMAP literals, not quoted. */
#define MIME_QUOTED_MAX 4096
/* Largest message the parser and the cache accept (offsets are 32-bit). */
#define MIME_MAX_MESSAGE_SIZE ((size_t)UINT32_MAX - 1)

/* Version of the blob written by mime_cache_build(); mime_cache_load()
 * reads it and version 1 (the same layout with an FNV-1a checksum, in
 * stores written before), and refuses any other. */
#define MIME_CACHE_VERSION 2

/* "No part": parent of the root, child of a leaf, next of a last child. */
#define MIME_NONE UINT32_MAX

/* Part flags. */
enum mime_part_flags {
	MIME_PART_MULTIPART = 0x01, /* has children separated by a boundary */
	MIME_PART_MESSAGE = 0x02,   /* message/rfc822 or message/global: one
				       child, the encapsulated message */
	MIME_PART_GLOBAL = 0x04,    /* with MESSAGE: message/global */
	MIME_PART_TEXT = 0x08,      /* text/... (or no Content-Type) */
	MIME_PART_IS_MIME = 0x10,   /* Content-* headers apply */
	MIME_PART_OVERFLOW = 0x20,  /* a limit stopped parsing inside it */
	MIME_PART_DIGEST = 0x40,    /* multipart/digest */
};

/* The parsed structure: a read-only view over a validated blob.  It lives in
 * the arena given to mime_parse() / mime_cache_load() and, for the latter,
 * refers to the blob bytes, which must outlive it (an LMDB value: until the
 * transaction ends).  Nothing needs freeing besides the arena. */
struct mime_msg;

/* -- parsing and the cache ------------------------------------------------- */

/* Parses msg[0..len) and returns its structure in *msg_r, allocated from a
 * (blob included).  Returns -1 with *error_r only if len exceeds
 * MIME_MAX_MESSAGE_SIZE; any content parses. */
int mime_parse(struct arena *a, const char *msg, size_t len,
	       struct mime_msg **msg_r, const char **error_r);

/* Parses msg[0..len) and appends the versioned blob to out.  Returns 0, or
 * -1 (nothing appended) if len exceeds MIME_MAX_MESSAGE_SIZE. */
int mime_cache_build(const char *msg, size_t len, struct buf *out);

/* Checks blob[0..blob_len) (magic, version, checksum, every offset, index
 * and string, tree shape and depth) and returns a view of it in *msg_r.
 * msg_len is the length of the message the caller will pass to the section
 * functions; a blob built for another length is refused.  Returns 0, or -1
 * with a static *error_r: a corrupt blob never crashes, it is refused. */
int mime_cache_load(struct arena *a, const void *blob, size_t blob_len,
		    size_t msg_len, struct mime_msg **msg_r,
		    const char **error_r);

/* The checksum blob's header should hold for its version and contents
 * (0 for a blob shorter than its header): for tools and tests that build
 * or alter blobs. */
uint32_t mime_cache_checksum(const void *blob, size_t blob_len);

/* The blob bytes behind m (to store the result of mime_parse()). */
const void *mime_blob(const struct mime_msg *m, size_t *len_r);

/* -- parts (for SEARCH and friends) ----------------------------------------- */

struct mime_part_info {
	uint32_t parent, first_child, next; /* part indexes or MIME_NONE */
	uint32_t depth;                     /* the message itself: 0 */
	unsigned int flags;                 /* enum mime_part_flags */
	size_t hdr_off, hdr_len;            /* header, blank line included */
	size_t body_off, body_len;          /* raw octets */
	uint64_t body_size;                 /* octets as sent (bare LF = 2) */
	uint32_t body_lines;
	/* Header values as in the message (NUL-terminated), NULL if absent.
	 * type is NULL when the part has no Content-Type (text/plain). */
	const char *type, *subtype, *cte, *id, *description, *md5,
		*disposition, *location;
};

/* Parts are numbered in message order, the message itself being 0. */
uint32_t mime_part_count(const struct mime_msg *m);
/* Fills *info_r for part idx; returns -1 if idx is out of range. */
int mime_part_get(const struct mime_msg *m, uint32_t idx,
		  struct mime_part_info *info_r);
/* Value of the Content-Type parameter name (case-insensitive) of part idx,
 * as in the message (RFC 2231 continuations joined; an extended value is
 * found under "name*", see mime_decode_param()).  NULL if absent.  With
 * disposition != 0, the Content-Disposition parameters are searched. */
const char *mime_part_param(const struct mime_msg *m, uint32_t idx,
			    const char *name, int disposition);

/* -- IMAP output (mime_imap.c) ---------------------------------------------- */

/* Append "(...)" ready to follow "ENVELOPE ", "BODY " or "BODYSTRUCTURE ".
 * Strings are quoted, or literals when they hold 8-bit bytes, CR or LF,
 * more than 4 quoted-specials or more than MIME_QUOTED_MAX octets. */
void mime_imap_envelope(const struct mime_msg *m, struct buf *out);
void mime_imap_body(const struct mime_msg *m, struct buf *out);
void mime_imap_bodystructure(const struct mime_msg *m, struct buf *out);

/* IMAP string / nstring (s == NULL: NIL) of s[0..len), Dovecot's rules. */
void mime_imap_string(struct buf *out, const char *s, size_t len);
void mime_imap_nstring(struct buf *out, const char *s, size_t len);

/* -- FETCH sections (mime_section.c) ---------------------------------------- */

/* What to send: chunks in order, pointing into the message or into the
 * arena (where bare LFs had to become CRLF or bytes were built). */
struct mime_chunk {
	const char *data;
	size_t len;
};

struct mime_section {
	struct mime_chunk *chunks;
	unsigned int nchunks;
	uint64_t size; /* sum of the chunk lengths */
};

enum mime_status {
	MIME_OK = 0,
	MIME_ERR_SYNTAX = -1,      /* bad section spec: BAD */
	MIME_ERR_UNKNOWN_CTE = -2, /* BINARY: NO [UNKNOWN-CTE] */
	MIME_ERR_MESSAGE = -3,     /* msg_len differs from the parsed one */
};

/* The content of BODY[spec], spec being the text between the brackets
 * (spec_len octets, not NUL-terminated): "", "HEADER", "TEXT",
 * "HEADER.FIELDS (A B)", "HEADER.FIELDS.NOT (A B)", "1", "1.2",
 * "1.2.MIME", "2.HEADER", "3.TEXT", "4.1.HEADER.FIELDS (Subject)", any
 * case.  A part that does not exist, and HEADER/TEXT of a part that is not
 * message/rfc822, give an empty section (MIME_OK).  msg/msg_len are the
 * message m was built from.  Chunks live in a and in msg.  Returns an enum
 * mime_status with a static *error_r when not MIME_OK. */
int mime_section_fetch(const struct mime_msg *m, const char *msg,
		       size_t msg_len, const char *spec, size_t spec_len,
		       struct arena *a, struct mime_section *sec_r,
		       const char **error_r);

/* A BODY[] section spec parsed once for the many messages of a FETCH:
 * MIME_OK with *spec_r (in a), or MIME_ERR_SYNTAX. */
struct mime_spec;
int mime_spec_parse(struct arena *a, const char *spec, size_t spec_len,
		    struct mime_spec **spec_r, const char **error_r);
/* mime_section_fetch() with a spec from mime_spec_parse().  opts:
 * MIME_SEC_CRLF when msg is known to hold no bare LF (each LF follows a
 * CR), so its octets are sent without looking for LFs to turn into
 * CRLF. */
#define MIME_SEC_CRLF 1u
int mime_section_fetch_parsed(const struct mime_msg *m, const char *msg,
			      size_t msg_len, const struct mime_spec *spec,
			      unsigned opts, struct arena *a,
			      struct mime_section *sec_r, const char **error_r);
/* Whether spec names the whole message (BODY[], RFC822), which needs no
 * MIME structure: mime_section_whole() answers it. */
int mime_spec_whole(const struct mime_spec *spec);
/* The whole message as BODY[] sends it (bare LFs as CRLF); opts as for
 * mime_section_fetch_parsed(). */
void mime_section_whole(const char *msg, size_t msg_len, unsigned opts,
			struct arena *a, struct mime_section *sec_r);

/* The content of BINARY[part] (RFC 3516): part is "" (the whole message,
 * unchanged) or "1.2"...; the body is decoded from its
 * Content-Transfer-Encoding (base64, quoted-printable; 7bit, 8bit and
 * binary as they are).  Another encoding gives MIME_ERR_UNKNOWN_CTE.
 * BINARY.SIZE is sec_r->size. */
int mime_section_binary(const struct mime_msg *m, const char *msg,
			size_t msg_len, const char *part, size_t part_len,
			struct arena *a, struct mime_section *sec_r,
			const char **error_r);

/* Appends octets [off, off + count) of the section (clipped to its size),
 * for partial fetches <off.count>; count UINT64_MAX means to the end. */
void mime_section_copy(const struct mime_section *sec, uint64_t off,
		       uint64_t count, struct buf *out);

/* -- preview (mime_preview.c) -----------------------------------------------
 */

/* Characters of a preview at most (RFC 8970: 256). */
#define MIME_PREVIEW_CHARS 200
/* Appends the preview of the message (IMAP PREVIEW, RFC 8970) to out: the
 * start of its first text/plain part that is no attachment, else of its
 * first text/html one, decoded to UTF-8, without quoted lines, signature
 * or markup, white space collapsed; nothing when it has no text. */
void mime_preview(const struct mime_msg *m, const char *msg, size_t len,
		  struct buf *out);

/* -- decoders (mime_decode.c), usable by SEARCH ------------------------------ */

/* base64, skipping anything outside the alphabet; '=' ends a group. */
void mime_decode_base64(const char *in, size_t len, struct buf *out);
/* quoted-printable; soft line breaks removed, hard ones written as CRLF,
 * trailing blanks of lines dropped, malformed '=' kept as it is. */
void mime_decode_qp(const char *in, size_t len, struct buf *out);
/* Converts in[0..len) from charset to UTF-8 (glibc iconv), invalid input
 * becoming U+FFFD.  Returns 0, or -1 with nothing appended if the charset
 * is unknown. */
int mime_decode_charset(const char *charset, const char *in, size_t len,
			struct buf *out);
/* A header value to UTF-8: unfolded, RFC 2047 encoded-words (B and Q)
 * decoded, white space between adjacent encoded-words dropped, words of an
 * unknown charset or malformed ones left as they are, invalid UTF-8
 * outside them replaced by U+FFFD. */
void mime_decode_header(const char *in, size_t len, struct buf *out);
/* An RFC 2231 extended parameter value ("utf-8'en'%E2%82%AC") to UTF-8.
 * Returns 0, or -1 with nothing appended if it is not of that form or its
 * charset is unknown (the caller keeps the value as it is). */
int mime_decode_param(const char *value, size_t len, struct buf *out);

/* A message's header, field by field, without parsing the rest:
 * mime_header_len() is the length of the header block of msg[0..len)
 * (its lines, without the empty line that ends it; len when there is
 * none); mime_header_next() gives the field at *pos of h[0..len) (its
 * name, and its raw value: folded lines kept, the last line break
 * dropped), skipping lines that are no field, and moves *pos on: 1, or 0
 * at the end. */
struct mime_hfield {
	const char *name, *val;
	size_t nlen, vlen;
};
size_t mime_header_len(const char *msg, size_t len);
int mime_header_next(const char *h, size_t len, size_t *pos,
		     struct mime_hfield *f);
/* The field's name is name (ASCII, without regard to case). */
int mime_hfield_is(const struct mime_hfield *f, const char *name);
/* fn for each address of an address-list field's value (RFC 5322, parsed
 * as for ENVELOPE): its local part (unquoted) and domain, not
 * NUL-terminated; group names are not addresses.  At most
 * MIME_MAX_ADDRESSES. */
void mime_address_each(const char *v, size_t len,
		       void (*fn)(void *ctx, const char *mailbox, size_t mlen,
				  const char *domain, size_t dlen),
		       void *ctx);

#endif
