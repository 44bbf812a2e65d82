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

#endif
