/*
 * sjson.h - small helpers over json-c for the status schema
 * (docs/status.md).  Every module that reports state fills a json-c object
 * the caller hands it; only these helpers and json-c itself ever produce
 * JSON text.
 *
 * NULL-safety: json-c returns NULL when it cannot allocate.  sj_add() and
 * sj_push() accept a NULL container (the value is then released) and a
 * NULL value (stored as JSON null), so a status built under memory
 * pressure loses fields instead of crashing.
 */
#ifndef SGNFS_SJSON_H
#define SGNFS_SJSON_H

#include <stddef.h>
#include <json-c/json.h>

/* Add @val (ownership passes) under @key to object @obj. */
void sj_add(struct json_object *obj, const char *key, struct json_object *val);
/* Append @val (ownership passes) to array @arr. */
void sj_push(struct json_object *arr, struct json_object *val);

/*
 * A JSON string for bytes that came off the network (@n bytes, not
 * NUL-terminated, not necessarily UTF-8).  Each byte >= 0x80 stands for
 * the code point U+0080..U+00FF (a Latin-1 reading), so the output is
 * valid UTF-8 JSON whatever the client sent and every byte can be
 * recovered.  Caller owns the result (json_object_put); NULL on ENOMEM.
 */
struct json_object *sj_wire_str(const void *p, size_t n);
/* Lower-case hex of @n bytes as a JSON string; caller owns; NULL on ENOMEM. */
struct json_object *sj_hex(const void *p, size_t n);

/* Serialise @obj on one line; the text is owned by @obj. */
const char *sj_text(struct json_object *obj);

#endif
