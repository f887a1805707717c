/*
 * peer.h - status between machines: each node answers an authenticated,
 * read-only status request on its configured node address, so that
 * `sgnfsctl status` on any machine reaches every node, also those whose
 * control socket (a UNIX socket, local to its machine) it cannot see.
 *
 * Wire protocol (TCP, on `[node] address` port `peer_port`; all lengths
 * fixed or checked before anything is buffered):
 *
 *   node -> asker   hello:   "SGPEER01" | challenge (32 random bytes)
 *   asker -> node   request: "SGPEER01" | nonce (32 bytes) | name (64
 *                            bytes, the asker's name for the log, NUL
 *                            padded) | MAC (32 bytes)
 *                   MAC = HMAC-SHA256(key, "sgnfs peer status request 1"
 *                         NUL | challenge | nonce | name)
 *   node -> asker   reply:   length (4 bytes, big-endian, at most
 *                            PEER_REPLY_MAX) | the node status JSON
 *                            (docs/status.md) | MAC (32 bytes)
 *                   MAC = HMAC-SHA256(key, "sgnfs peer status reply 1"
 *                         NUL | challenge | nonce | length | JSON)
 *
 * The node's fresh challenge makes every request single-use (no clocks to
 * keep in step, no replay window); the asker's nonce makes the reply fresh
 * and bound to its request, so a forged or replayed reply is refused too.
 * The labels keep these MACs apart from the file handle MACs made with the
 * same key (nfs/fh.h): a handle MAC's input starts with its version byte.
 * A request that fails is answered with nothing: the connection closes and
 * the node logs why (rate limited).  Only one request exists, and it only
 * reads: nothing can be changed through this port.
 *
 * Key: the key file named by `[cluster] peer_key`, else `handle_key`
 * (hkey.h format); a request verifies with its current or previous key.
 */
#ifndef SGNFS_PEER_H
#define SGNFS_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "hkey.h"
#include "sjson.h"

#define PEER_MAGIC      "SGPEER01"
#define PEER_MAGIC_LEN  8
#define PEER_NONCE_LEN  32
#define PEER_NAME_LEN   64
#define PEER_MAC_LEN    32
#define PEER_HELLO_LEN  (PEER_MAGIC_LEN + PEER_NONCE_LEN)
#define PEER_REQ_LEN    (PEER_MAGIC_LEN + PEER_NONCE_LEN + PEER_NAME_LEN + PEER_MAC_LEN)
#define PEER_REPLY_MAX  (64u << 20)
#define PEER_DEFAULT_PORT 20050

/* ---- the MACs (pure; used by both sides and by the unit test) ---------- */

/* The request MAC of @challenge, @nonce, @name (PEER_NAME_LEN bytes). */
void peer_req_mac(const uint8_t key[HK_KEY_SIZE], const uint8_t *challenge,
		  const uint8_t *nonce, const uint8_t *name, uint8_t mac[PEER_MAC_LEN]);
/* The reply MAC of @challenge, @nonce and the @len bytes of @json. */
void peer_reply_mac(const uint8_t key[HK_KEY_SIZE], const uint8_t *challenge,
		    const uint8_t *nonce, const char *json, uint32_t len,
		    uint8_t mac[PEER_MAC_LEN]);
/*
 * Check request @req (PEER_REQ_LEN bytes) against @challenge with the keys
 * of @ks.  Returns the key that verified (ks->cur or ks->prev), or NULL
 * with @why set ("not an sgnfs peer request", "bad MAC ...").
 */
const uint8_t *peer_req_check(const struct hk_set *ks, const uint8_t *challenge,
			      const uint8_t *req, const char **why);

/* ---- asking (blocking; sgnfsctl) --------------------------------------- */

/*
 * Ask the node listening at @addr (with its port) for its status, as
 * @me (a name for its log), signing with @ks->cur, waiting at most
 * @timeout_ms for each step.  Returns 0 and the JSON text in *@json
 * (NUL-terminated; caller frees), or -errno with a reason in @why:
 * -ECONNREFUSED and the like from connect, -ETIMEDOUT, -EPROTO (not an
 * sgnfs peer), -EACCES (the node closed after our request: it refused it,
 * most likely another key; its log says why), -EBADMSG (the reply's MAC
 * is wrong: not signed with our key), -EMSGSIZE.
 */
int peer_ask(const struct sockaddr_storage *addr, const struct hk_set *ks, const char *me,
	     int timeout_ms, char **json, char *why, size_t whylen);

/* ---- answering (the node, on its loop) --------------------------------- */

struct peer_server;

/*
 * A verified request, waiting for its answer.  The status fn gets it on the
 * loop and must answer it exactly once with peer_call_done, then or later
 * (the status is written off the loop: docs/status.md); the call stays
 * valid until then, also if its connection closes or the server is
 * closed meanwhile (the answer is then dropped, the call freed).
 */
struct peer_call;
typedef void (*peer_status_fn)(void *arg, struct peer_call *call);
/*
 * The wire reply for @call: length, the @len bytes of JSON text @json, MAC
 * (the protocol above), into *@out (malloc'd, *@outlen bytes; the caller
 * owns it).  Reads only what the call holds since it was handed out, so it
 * may run on any thread while the loop goes on.  0, -EMSGSIZE (over
 * PEER_REPLY_MAX) or -ENOMEM.
 */
int peer_call_frame(const struct peer_call *call, const char *json, size_t len,
		    uint8_t **out, size_t *outlen);
/* Loop thread: answer @call with @out (from peer_call_frame; ownership
 * passes here; NULL: close unanswered) and end it. */
void peer_call_done(struct peer_call *call, uint8_t *out, size_t outlen);

/*
 * Listen on @addr (with the port) and answer status requests verified with
 * @ks (copied; peer_server_set_keys replaces it) with @fn's object.
 * 0 or -errno.
 */
int peer_listen(uv_loop_t *loop, const struct sockaddr_storage *addr, const struct hk_set *ks,
		peer_status_fn fn, void *arg, struct peer_server **out);
void peer_server_set_keys(struct peer_server *s, const struct hk_set *ks);
/* Counters for the metrics and tests. */
struct peer_stats {
	uint64_t answered, refused, limited;
};
void peer_server_stats(const struct peer_server *s, struct peer_stats *out);
/* Stop listening; connections in progress are closed.  NULL is fine. */
void peer_close(struct peer_server *s);

#endif
