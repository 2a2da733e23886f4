/* hex.h - the value of a hexadecimal digit, either case (-1: not one).
 * SMTP's xtext, upper case only, has its own (smtp_parser.c). */
#ifndef PORTICO_HEX_H
#define PORTICO_HEX_H

static inline int
hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

#endif
