/* test_http_xml.c - the bounded XML scanner of autodiscover requests
 * (frontend/http/http_xml.c): an element's text, entities decoded, and
 * nothing read from comments, CDATA sections or processing instructions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontend/http/http_xml.h"

/* The result for xml, on an exact-size copy (ASan sees any over-read). */
static int
element(const char *xml, const char *name, char *out, size_t outsize)
{
	size_t len = strlen(xml);
	char *copy = malloc(len ? len : 1);
	memcpy(copy, xml, len);
	int rc = http_xml_element(copy, len, name, out, outsize);
	free(copy);
	return rc;
}

static void
test_text_and_entities(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(element("<?xml version=\"1.0\"?><a:Autodiscover>"
				 "<a:EMailAddress> x&amp;y@e.test&#46; "
				 "</a:EMailAddress></a:Autodiscover>",
				 "EMailAddress", out, sizeof(out)),
			 1);
	assert_string_equal(out, "x&y@e.test.");
	assert_int_equal(element("<A><EMailAddress/></A>", "EMailAddress",
				 out, sizeof(out)),
			 1);
	assert_string_equal(out, "");
	assert_int_equal(element("<A><Other>x</Other></A>", "EMailAddress",
				 out, sizeof(out)),
			 0);
	/* too long, unknown entity, unterminated */
	assert_int_equal(element("<E>0123456789</E>", "E", out, 5), -1);
	assert_int_equal(element("<E>&foo;</E>", "E", out, sizeof(out)), -1);
	assert_int_equal(element("<E>abc", "E", out, sizeof(out)), -1);
}

static void
test_no_markup_in_comments_cdata_pi(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(
		element("<A><!-- <E>evil@e.test</E> --><E>real@e.test</E></A>",
			"E", out, sizeof(out)),
		1);
	assert_string_equal(out, "real@e.test");
	assert_int_equal(element("<A><![CDATA[<E>evil</E>]]><E>real</E></A>",
				 "E", out, sizeof(out)),
			 1);
	assert_string_equal(out, "real");
	assert_int_equal(element("<?pi <E>evil</E> ?><E>real</E>", "E", out,
				 sizeof(out)),
			 1);
	assert_string_equal(out, "real");
	/* an unterminated comment, a DTD, markup inside the text */
	assert_int_equal(element("<A><!-- <E>x</E>", "E", out, sizeof(out)),
			 -1);
	assert_int_equal(element("<!DOCTYPE A [<!ENTITY x \"y\">]><E>z</E>",
				 "E", out, sizeof(out)),
			 -1);
	assert_int_equal(element("<E><!-- c -->x</E>", "E", out, sizeof(out)),
			 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_and_entities),
		cmocka_unit_test(test_no_markup_in_comments_cdata_pi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
