/* http_auto_reply.c - the automatic reply (out of office) on the settings
 * page: the section a signed-in user sees, with the state the directory
 * holds and a form to change it, and the reading of that form.
 *
 * The page keeps no session: the form carries the login name and asks
 * for the password again, and http_settings.c signs the user in anew,
 * checks the account as for a sign-in, and has the directory change the
 * entry with the user's own rights (dir_authenticate_auto_reply).  Dates
 * are whole days in UTC: from the start of the first to the end of the
 * last. */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/smtp_parser.h"
#include "frontend/directory.h"
#include "frontend/frontend.h"

/* The schema's bound of porticoAutoReplySubject, in characters. */
#define AUTO_REPLY_SUBJECT_CHARS 256

static size_t
utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* "YYYY-MM-DD" of the day t is in (UTC); "" for 0. */
static void
day_format(int64_t t, char out[16])
{
	dir_time_format(t, 1, out, 16);
}

/* "YYYY-MM-DD" (an <input type="date">'s value) to the unix time of its
 * start (UTC): 0, or -1. */
static int
day_parse(const char *s, int64_t *t_r)
{
	char gt[16];
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	snprintf(gt, sizeof(gt), "%.4s%.2s%.2s00Z", s, s + 5, s + 8);
	return dir_generalized_time(gt, strlen(gt), t_r);
}

void
http_auto_reply_section(struct buf *b, const char *login,
			const struct dir_auto_reply *ar, const char *message,
			int saved)
{
	int on = ar != NULL && ar->text[0] != '\0';
	char start[16] = "", end[16] = "";
	if (on) {
		day_format(ar->start, start);
		/* the end is the start of the day after the last */
		day_format(ar->end != 0 ? ar->end - 86400 : 0, end);
	}
	buf_append_str(b, "<section id=\"auto-reply\">\n"
			  "<h2>Automatic reply (out of office)</h2>\n");
	if (message != NULL) {
		buf_printf(b, "<p class=\"%s\" id=\"auto-reply-message\">",
			   saved ? "done" : "message");
		http_escape(b, message);
		buf_append_str(b, "</p>\n");
	}
	buf_printf(b, "<p id=\"auto-reply-state\" data-state=\"%s\">",
		   on ? "on" : "off");
	if (!on) {
		buf_append_str(b, "Your automatic reply is off.");
	} else {
		buf_append_str(b, "Your automatic reply is on");
		if (start[0] != '\0') {
			buf_append_str(b, " from ");
			buf_append_str(b, start);
		}
		if (end[0] != '\0') {
			buf_append_str(b, " until ");
			buf_append_str(b, end);
		}
		buf_append_str(b, " (UTC): whoever writes to you gets it, "
				  "once, and again after a while.");
	}
	buf_append_str(b, "</p>\n"
			  "<form method=\"post\" action=\"/settings\">\n"
			  "<input type=\"hidden\" name=\"action\" "
			  "value=\"auto-reply\">\n"
			  "<input type=\"hidden\" name=\"user\" value=\"");
	http_escape(b, login);
	buf_printf(b,
		   "\">\n<label><input type=\"checkbox\" name=\"auto_reply\" "
		   "id=\"ar-on\" value=\"on\"%s> Answer the mail I get "
		   "automatically</label>\n"
		   "<label for=\"ar-subject\">Subject (empty: \"Auto:\" and "
		   "the subject of the message answered)</label>\n"
		   "<input id=\"ar-subject\" name=\"subject\" type=\"text\" "
		   "maxlength=\"%d\" value=\"",
		   on ? " checked" : "", AUTO_REPLY_SUBJECT_CHARS);
	if (on)
		http_escape(b, ar->subject);
	buf_append_str(b, "\">\n<label for=\"ar-text\">Text</label>\n"
			  "<textarea id=\"ar-text\" name=\"text\" rows=\"8\" "
			  "cols=\"60\">");
	if (on)
		http_escape(b, ar->text);
	buf_printf(b,
		   "</textarea>\n"
		   "<label for=\"ar-start\">From (optional)</label>\n"
		   "<input id=\"ar-start\" name=\"start\" type=\"date\" "
		   "value=\"%s\">\n"
		   "<label for=\"ar-end\">Until (optional, the last day)"
		   "</label>\n"
		   "<input id=\"ar-end\" name=\"end\" type=\"date\" "
		   "value=\"%s\">\n"
		   "<label for=\"ar-password\">Your password, to "
		   "confirm</label>\n"
		   "<input id=\"ar-password\" name=\"password\" "
		   "type=\"password\" autocomplete=\"current-password\" "
		   "required>\n"
		   "<button type=\"submit\">Save the automatic reply</button>\n"
		   "</form>\n</section>\n",
		   start, end);
}

int
http_auto_reply_form(const struct frontend *fe, const char *body, size_t len,
		     struct dir_auto_reply *set, const char **message_r)
{
	size_t max = (size_t)fe->cfg.lmtp_auto_reply_max_size;
	char on[8], subject[4 * AUTO_REPLY_SUBJECT_CHARS + 1], start[16],
	    end[16];
	memset(set, 0, sizeof(*set));
	int ho = http_param(body, len, "auto_reply", on, sizeof(on));
	int hs = http_param(body, len, "subject", subject, sizeof(subject));
	int h1 = http_param(body, len, "start", start, sizeof(start));
	int h2 = http_param(body, len, "end", end, sizeof(end));
	if (ho < 0 || hs < 0 || h1 < 0 || h2 < 0) {
		*message_r = hs < 0 ? "The subject is too long."
				    : "The form could not be read.";
		return -1;
	}
	if (ho == 0 || strcmp(on, "on") != 0) {
		/* off: the four attributes go */
		if ((set->text = strdup("")) == NULL ||
		    (set->subject = strdup("")) == NULL)
			abort();
		return 0;
	}
	if (max == 0) {
		*message_r = "Automatic replies are not offered here.";
		return -1;
	}
	set->text = malloc(max + 1);
	if (set->text == NULL)
		abort();
	int ht = http_param(body, len, "text", set->text, max + 1);
	if (ht < 0) {
		*message_r = "The text is too long.";
		goto fail;
	}
	if (ht == 0 || strspn(set->text, " \t\r\n") == strlen(set->text)) {
		*message_r = "Write the text of the automatic reply.";
		goto fail;
	}
	if (hs == 0)
		subject[0] = '\0';
	if (!smtp_utf8_valid((const unsigned char *)set->text,
			     strlen(set->text)) ||
	    !smtp_utf8_valid((const unsigned char *)subject, strlen(subject))) {
		*message_r = "The form could not be read (not UTF-8).";
		goto fail;
	}
	if (utf8_chars(subject) > AUTO_REPLY_SUBJECT_CHARS ||
	    strpbrk(subject, "\r\n") != NULL) {
		*message_r = "The subject is too long, or has more than one "
			     "line.";
		goto fail;
	}
	if ((h1 == 1 && start[0] != '\0' &&
	     day_parse(start, &set->start) < 0) ||
	    (h2 == 1 && end[0] != '\0' && day_parse(end, &set->end) < 0)) {
		*message_r = "Give the dates as YYYY-MM-DD.";
		goto fail;
	}
	if (set->end != 0)
		set->end += 86400; /* the whole last day */
	if (set->end != 0 && set->end <= set->start) {
		*message_r = "The last day comes before the first.";
		goto fail;
	}
	if (set->end != 0 && set->end <= (int64_t)time(NULL)) {
		*message_r = "The last day is over already.";
		goto fail;
	}
	if ((set->subject = strdup(subject)) == NULL)
		abort();
	return 0;
fail:
	free(set->text);
	set->text = NULL;
	return -1;
}
