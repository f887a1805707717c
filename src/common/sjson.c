/* sjson.c - see sjson.h. */
#include "sjson.h"

#include <stdint.h>
#include <stdlib.h>

void sj_add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!obj || json_object_object_add(obj, key, val) != 0)
		json_object_put(val);
}

void sj_push(struct json_object *arr, struct json_object *val)
{
	if (!arr || json_object_array_add(arr, val) != 0)
		json_object_put(val);
}

struct json_object *sj_wire_str(const void *p, size_t n)
{
	const uint8_t *b = p;
	struct json_object *o;
	char *u;
	size_t o_len = 0;

	/* At most two UTF-8 bytes per input byte. */
	u = malloc(2 * n + 1);
	if (!u)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (b[i] < 0x80) {
			u[o_len++] = (char)b[i];
		} else {
			/* U+0080..U+00FF in UTF-8: 110000xx 10xxxxxx. */
			u[o_len++] = (char)(0xc0 | (b[i] >> 6));
			u[o_len++] = (char)(0x80 | (b[i] & 0x3f));
		}
	}
	o = json_object_new_string_len(u, (int)o_len);
	free(u);
	return o;
}

struct json_object *sj_hex(const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *b = p;
	struct json_object *o;
	char *h = malloc(2 * n + 1);

	if (!h)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		h[2 * i] = hex[b[i] >> 4];
		h[2 * i + 1] = hex[b[i] & 15];
	}
	o = json_object_new_string_len(h, (int)(2 * n));
	free(h);
	return o;
}

const char *sj_text(struct json_object *obj)
{
	return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
}
