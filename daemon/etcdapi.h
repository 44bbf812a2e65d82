/*
 * etcdapi.h: etcd's JSON gateway (etcd 3.4, /v3/...), pure: the bodies of
 * the requests the daemon makes, and the judgement of their replies,
 * with jansson.  No I/O (etcdhttp.h carries the bytes).
 *
 * The gateway's JSON is protobuf's: keys and values are base64, 64-bit
 * integers are strings ("revision":"12"), and a field that is false or
 * zero is left out ({"TTL":"0"} comes as no TTL at all).  A failed call
 * answers {"error":"...","message":"...","code":N} with N a gRPC code (5:
 * not found), a streaming one {"error":{"grpc_code":N,"message":...}}.
 * Every reply is untrusted input: a parser takes any bytes, and either
 * fills its outputs from a reply of the expected shape or fails with
 * why (size bytes) saying what is wrong; it never trusts a length, a
 * type or a range it has not checked.
 */
#ifndef LBD_ETCDAPI_H
#define LBD_ETCDAPI_H

#include <stddef.h>
#include <stdint.h>

/* The gRPC code of "not found" (a lease that has expired, say). */
#define LBD_ETCD_NOT_FOUND 5

/* The longest reply the daemon reads for a lease or a lock-key call. */
#define LBD_ETCD_REPLY_MAX (64 * 1024)

/*
 * lbd_etcd_b64_encode: len bytes of in as base64 (RFC 4648, padded) into
 * out (size bytes, NUL-terminated).  Returns the length written, or -1
 * when out is too short.
 */
int lbd_etcd_b64_encode(const void *in, size_t len, char *out, size_t size);

/*
 * lbd_etcd_b64_decode: the base64 text in (NUL-terminated) into out (size
 * bytes).  Returns the bytes written, or -1 when in is not padded base64
 * or out is too short.
 */
int lbd_etcd_b64_decode(const char *in, unsigned char *out, size_t size);

/*
 * Request bodies: malloc'd NUL-terminated JSON, freed by the caller;
 * NULL when out of memory.
 *   grant:     {"TTL":"ttl"}          POST /v3/lease/grant
 *   keepalive: {"ID":"id"}            POST /v3/lease/keepalive
 *   revoke:    {"ID":"id"}            POST /v3/lease/revoke
 */
char *lbd_etcd_body_grant(int64_t ttl);
char *lbd_etcd_body_lease(int64_t id);

/*
 * A reply's outcome: LBD_ETCD_OK with the outputs filled,
 * LBD_ETCD_ERROR when etcd answered with an error (*code its gRPC code,
 * why its message), LBD_ETCD_BAD when the reply is not one etcd gives
 * (not JSON, a field of the wrong type or out of range, the HTTP status
 * and the body disagreeing; why says what).
 */
enum lbd_etcd_outcome { LBD_ETCD_OK, LBD_ETCD_ERROR, LBD_ETCD_BAD };

/*
 * lbd_etcd_parse_grant: the reply (HTTP status, body of len bytes) to a
 * grant: *id the lease's id (> 0), *ttl the TTL etcd granted (seconds,
 * > 0), *revision the header's revision (0 when left out).
 */
enum lbd_etcd_outcome lbd_etcd_parse_grant(long status, const char *body,
    size_t len, int64_t *id, int64_t *ttl, int64_t *revision, int *code,
    char *why, size_t size);

/*
 * lbd_etcd_parse_keepalive: the reply to a keepalive of lease id:
 * {"result":{...,"ID":id,"TTL":ttl}}.  *ttl is the lease's TTL now, 0
 * when etcd no longer has the lease (TTL left out, or not positive).
 * A reply about another lease is LBD_ETCD_BAD.
 */
enum lbd_etcd_outcome lbd_etcd_parse_keepalive(long status,
    const char *body, size_t len, int64_t id, int64_t *ttl, int *code,
    char *why, size_t size);

/*
 * lbd_etcd_parse_revoke: the reply to a revoke: LBD_ETCD_OK when etcd
 * revoked it; LBD_ETCD_ERROR with *code LBD_ETCD_NOT_FOUND when it had
 * no such lease (expired, or revoked already).
 */
enum lbd_etcd_outcome lbd_etcd_parse_revoke(long status, const char *body,
    size_t len, int *code, char *why, size_t size);

/*
 * The lock key's calls (docs/CLUSTER.md, "Taking a lock key"), etcd's own
 * lock algorithm.  prefix is the lock's "PREFIX/ESCAPED/" (cluster.h),
 * key its key (prefix and the lease in hex); both are plain text, base64
 * in the bodies.
 *   lock_txn:    POST /v3/kv/txn: key put on lease (value value) unless
 *                it exists; either way, key and the prefix's first key
 *                by create revision read back
 *   predecessor: POST /v3/kv/range: the prefix's last key created
 *                before revision rev (its create revision below rev)
 *   watch:       POST /v3/watch: key's deletions from revision start
 *   delete:      POST /v3/kv/deleterange: key
 */
char *lbd_etcd_body_lock_txn(const char *prefix, const char *key,
    const char *value, int64_t lease);
char *lbd_etcd_body_predecessor(const char *prefix, int64_t rev);
char *lbd_etcd_body_watch(const char *key, int64_t start);
char *lbd_etcd_body_delete(const char *key);

/*
 * lbd_etcd_parse_lock_txn: the reply to lock_txn: *mine the key's create
 * revision (> 0), *owner the prefix's first key's (0 when the prefix is
 * empty: then the key was lost between put and read), *revision the
 * header's.  The key is held when *mine == *owner.
 */
enum lbd_etcd_outcome lbd_etcd_parse_lock_txn(long status,
    const char *body, size_t len, int64_t *mine, int64_t *owner,
    int64_t *revision, int *code, char *why, size_t size);

/*
 * lbd_etcd_parse_predecessor: the reply to predecessor: its key (decoded,
 * NUL-terminated, into key of size bytes; "" when there is none), which
 * must lie under prefix, and the header's revision.
 */
enum lbd_etcd_outcome lbd_etcd_parse_predecessor(long status,
    const char *body, size_t len, const char *prefix, char *key,
    size_t keysize, int64_t *revision, int *code, char *why, size_t size);

/*
 * lbd_etcd_parse_watch_line: one line of a watch's stream: *deleted 1
 * when it reports the key's deletion; LBD_ETCD_ERROR when etcd ended or
 * refused the watch (canceled, compacted: watch again from a new
 * range); other lines (created, progress) are LBD_ETCD_OK with *deleted
 * 0.
 */
enum lbd_etcd_outcome lbd_etcd_parse_watch_line(const char *line,
    size_t len, int *deleted, int *code, char *why, size_t size);

/* lbd_etcd_parse_delete: the reply to delete. */
enum lbd_etcd_outcome lbd_etcd_parse_delete(long status, const char *body,
    size_t len, int *code, char *why, size_t size);

/*
 * The keys on a lease (a restarted daemon's adopted lease: its lock keys
 * taken back or deleted, cohort.c):
 *   lease_keys: POST /v3/lease/timetolive with keys: lease id's keys
 * lbd_etcd_parse_lease_keys: the reply: each key (decoded, NUL-free) in
 * a new array *keys of *n strings (free each and the array; NULL and 0
 * for none); at most LBD_ETCD_LEASE_KEYS_MAX.
 */
#define LBD_ETCD_LEASE_KEYS_MAX 65536

/*
 * A lock's holder, for STATUS (cohort.c):
 *   first: POST /v3/kv/range: the prefix's first key by create revision,
 *          with its value, and the prefix's count of keys
 * lbd_etcd_parse_first: the reply: the key (decoded, "" when the prefix
 * is empty) under prefix, its value (decoded, cut to valsize - 1 bytes,
 * each byte outside printable ASCII as '?'), its create revision (0:
 * none) and the count.
 */
char *lbd_etcd_body_first(const char *prefix);
enum lbd_etcd_outcome lbd_etcd_parse_first(long status, const char *body,
    size_t len, const char *prefix, char *key, size_t keysize, char *value,
    size_t valsize, int64_t *revision, int64_t *count, int *code,
    char *why, size_t size);
char *lbd_etcd_body_lease_keys(int64_t id);
enum lbd_etcd_outcome lbd_etcd_parse_lease_keys(long status,
    const char *body, size_t len, char ***keys, size_t *n, int *code,
    char *why, size_t size);

#endif
