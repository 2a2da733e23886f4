/* mime.c - parsing entry point and part accessors. */
#include "backend/mime/mime_private.h"

#include <string.h>
#include <strings.h>

int
mime_parse(struct arena *a, const char *msg, size_t len,
	   struct mime_msg **msg_r, const char **error_r)
{
	struct buf blob = BUF_INIT;

	*msg_r = NULL;
	if (mime_cache_build(msg, len, &blob) < 0) {
		buf_free(&blob);
		*error_r = "message too large for the MIME parser";
		return -1;
	}
	size_t blen = buf_used(&blob);
	void *copy = arena_alloc(a, blen);
	memcpy(copy, buf_ptr(&blob), blen);
	buf_free(&blob);
	/* cannot fail on what mime_cache_build() wrote; checked anyway */
	return mime_cache_load(a, copy, blen, len, msg_r, error_r);
}

size_t
mime_header_len(const char *h, size_t len)
{
	if (len > 0 &&
	    (h[0] == '\n' || (h[0] == '\r' && len > 1 && h[1] == '\n')))
		return 0;
	for (size_t i = 0; i + 1 < len; i++) {
		const char *nl = memchr(h + i, '\n', len - i - 1);
		if (nl == NULL)
			break;
		i = (size_t)(nl - h);
		if (h[i + 1] == '\n' ||
		    (h[i + 1] == '\r' && i + 2 < len && h[i + 2] == '\n'))
			return i + 1;
	}
	return len;
}

int
mime_header_next(const char *h, size_t len, size_t *pos, struct mime_hfield *f)
{
	size_t i = *pos;
	while (i < len) {
		size_t start = i;
		for (;;) {
			const char *nl = memchr(h + i, '\n', len - i);
			i = nl ? (size_t)(nl - h) + 1 : len;
			if (i >= len || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		const char *colon = memchr(h + start, ':', i - start);
		if (colon == NULL)
			continue;
		f->name = h + start;
		f->nlen = (size_t)(colon - f->name);
		while (f->nlen > 0 && (f->name[f->nlen - 1] == ' ' ||
				       f->name[f->nlen - 1] == '\t'))
			f->nlen--;
		f->val = colon + 1;
		f->vlen = (size_t)(h + i - f->val);
		while (f->vlen > 0 && (f->val[f->vlen - 1] == '\n' ||
				       f->val[f->vlen - 1] == '\r'))
			f->vlen--;
		*pos = i;
		return 1;
	}
	*pos = i;
	return 0;
}

int
mime_hfield_is(const struct mime_hfield *f, const char *name)
{
	size_t n = strlen(name);
	return f->nlen == n && strncasecmp(f->name, name, n) == 0;
}

const void *
mime_blob(const struct mime_msg *m, size_t *len_r)
{
	*len_r = m->blob_len;
	return m->blob;
}

uint32_t
mime_part_count(const struct mime_msg *m)
{
	return m->nparts;
}

static const char *
cstr_or_null(const struct mime_msg *m, uint32_t ref)
{
	size_t len;
	return mime_str(m, ref, &len);
}

int
mime_part_get(const struct mime_msg *m, uint32_t idx,
	      struct mime_part_info *info_r)
{
	if (idx >= m->nparts)
		return -1;
	memset(info_r, 0, sizeof(*info_r));
	info_r->parent = mime_pw(m, idx, P_PARENT);
	info_r->first_child = mime_pw(m, idx, P_CHILD);
	info_r->next = mime_pw(m, idx, P_NEXT);
	info_r->depth = mime_pw(m, idx, P_DEPTH);
	info_r->flags = mime_pw(m, idx, P_FLAGS);
	info_r->hdr_off = mime_pw(m, idx, P_HDR_OFF);
	info_r->body_off = mime_pw(m, idx, P_BODY_OFF);
	info_r->hdr_len = info_r->body_off - info_r->hdr_off;
	info_r->body_len = mime_pw(m, idx, P_END) - info_r->body_off;
	info_r->body_size = mime_body_size(m, idx);
	info_r->body_lines = mime_pw(m, idx, P_LINES);
	info_r->type = cstr_or_null(m, mime_pw(m, idx, P_TYPE));
	info_r->subtype = cstr_or_null(m, mime_pw(m, idx, P_SUBTYPE));
	info_r->cte = cstr_or_null(m, mime_pw(m, idx, P_CTE));
	info_r->id = cstr_or_null(m, mime_pw(m, idx, P_ID));
	info_r->description = cstr_or_null(m, mime_pw(m, idx, P_DESC));
	info_r->md5 = cstr_or_null(m, mime_pw(m, idx, P_MD5));
	info_r->disposition = cstr_or_null(m, mime_pw(m, idx, P_DISP));
	info_r->location = cstr_or_null(m, mime_pw(m, idx, P_LOCATION));
	return 0;
}

const char *
mime_part_param(const struct mime_msg *m, uint32_t idx, const char *name,
		int disposition)
{
	if (idx >= m->nparts)
		return NULL;
	uint32_t first = mime_pw(m, idx, disposition ? P_DISP_PARAMS :
						      P_CT_PARAMS);
	uint32_t n = mime_pw(m, idx, disposition ? P_DISP_NPARAMS :
						  P_CT_NPARAMS);
	for (uint32_t i = 0; i < n; i++) {
		size_t len;
		const char *k = mime_str(m, mime_ref(m, first + 2 * i), &len);
		if (k != NULL && strcasecmp(k, name) == 0)
			return mime_str(m, mime_ref(m, first + 2 * i + 1),
					&len);
	}
	return NULL;
}
