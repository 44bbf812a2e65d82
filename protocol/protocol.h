/*
 * protocol.h: the lockbroker wire protocol in one place: its version, its
 * messages, its error codes and every size limit.  docs/PROTOCOL.md
 * describes each message; this header and that page change together.  The
 * protocol grows by adding messages and optional fields, never by changing
 * what an existing one means.
 *
 * A message is one line of at most LBP_LINE_MAX bytes, '\n' included (a
 * '\r' before it is tolerated):
 *
 *     VERB SP ID *( SP KEY "=" VALUE ) [CR] LF
 *
 * VERB is one of the words below, ID a decimal request id of 1 to
 * LBP_ID_DIGITS digits chosen by the client, without a leading zero unless
 * it is "0" (a reply carries its request's id; "-" in a reply to a line
 * whose id could not be read), KEY a lowercase word ([a-z][a-z0-9_]*) of at
 * most LBP_KEY_MAX bytes, VALUE percent-encoded: every byte outside
 * [A-Za-z0-9._~/+:,@-] is written %XX; decoding refuses %00, malformed
 * escapes and bytes that should have been encoded.  At most LBP_FIELDS_MAX
 * fields, each key once, in any order.
 *
 * This module is pure: no I/O, no allocation, no global state.  The daemon,
 * the client library, the command, the tests and the fuzzers share it.
 */
#ifndef LB_PROTOCOL_H
#define LB_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* The versions a daemon speaks, LBP_VERSION_MIN to LBP_VERSION; HELLO
 * agrees on the client's.  Version 2 adds shared locks (ACQUIRE mode=,
 * UPGRADE, DOWNGRADE, and the mode and holders fields of STATUS and
 * ITEM: docs/SHARED.md); a version-1 session sees none of it. */
#define LBP_VERSION     3
#define LBP_VERSION_MIN 1
#define LBP_VERSION_SHARED 2    /* the first with shared locks */
#define LBP_VERSION_SETS 3      /* the first with sets (set=, of=) */
#define LBP_LINE_MAX    8192    /* bytes in a line, '\n' included */
#define LBP_ID_DIGITS   18      /* digits in a request id */
#define LBP_KEY_MAX     16      /* bytes in a field's key */
#define LBP_FIELDS_MAX  16      /* fields in one message */

/* Where client and daemon meet by default: the system instance's socket,
 * and the user instance's, under $XDG_RUNTIME_DIR; on Windows, the named
 * pipe (\\.\pipe\lockbroker). */
#define LBP_SYSTEM_SOCKET "/run/lockbroker/socket"
#define LBP_USER_SOCKET   "lockbroker/socket"
#define LBP_SYSTEM_PIPE   "\\\\.\\pipe\\lockbroker"

/*
 * The messages.  X(verb, direction, required fields, optional fields):
 * fields are space-separated keys.  C: client to daemon; D: daemon to
 * client.  docs/PROTOCOL.md gives each field's meaning.
 */
#define LBP_VERB_MAP(X)                                                     \
	X(HELLO,   C, "version",     "client")                                \
	X(ACQUIRE, C, "path",        "method thread timeout pid stale mode set of") \
	X(RELEASE, C, "path",        "method thread pid")                     \
	X(STATUS,  C, "path",        "method thread pid")                     \
	X(BREAK,   C, "path",        "method")                                \
	X(LIST,    C, "",            "")                                      \
	X(CANCEL,  C, "target",      "")                                      \
	X(RECLAIM, C, "path token",  "method thread mode")                    \
	X(PING,    C, "",            "")                                      \
	X(UPGRADE, C, "path",        "method thread timeout")                 \
	X(DOWNGRADE, C, "path",      "method thread by")                      \
	X(OK,      D, "",            "version server pid token locked mine "  \
	                             "holder_pid holder_uid holder_tid host "  \
	                             "since waiters broken count mode "       \
	                             "holders")                               \
	X(ITEM,    D, "path method", "holder_pid holder_uid holder_tid host "  \
	                             "since token waiters mode")              \
	X(ERR,     D, "code",        "message lock")                          \
	X(LOST,    D, "path",        "method thread message")

/* The verbs are LBP_MSG_HELLO ... LBP_MSG_ERR: a bare LBP_##verb would make
 * the verb OK collide with the error code LBP_OK below. */
enum lbp_verb {
	LBP_NONE = 0,
#define LBP_VERB_ENUM(verb, dir, req, opt) LBP_MSG_##verb,
	LBP_VERB_MAP(LBP_VERB_ENUM)
#undef LBP_VERB_ENUM
	LBP_NVERBS
};

/*
 * The error codes an ERR reply carries (its `code` field is the name
 * without "LBP_").  X(name, meaning).  The first group mirrors the
 * library's LB_E* codes of the same name.
 */
#define LBP_ERRNO_MAP(X)                                                    \
	X(EALREADY,   "the lock is held by another owner (one try)")          \
	X(ETIMEOUT,   "the lock was not granted within the timeout")          \
	X(EFAILED,    "the lock cannot be taken (the message says why)")      \
	X(ENOTLOCKED, "nobody holds the lock")                                \
	X(ENOTMINE,   "someone else holds the lock")                          \
	X(EUNLOCK,    "the lock cannot be released (the message says why)")   \
	X(EINVAL,     "a field's value is not valid")                         \
	X(EPROTO,     "the line is malformed")                                \
	X(EVERB,      "no such message")                                      \
	X(EVERSION,   "protocol version not supported")                       \
	X(EHELLO,     "HELLO must come first, and once")                      \
	X(EID,        "the request id is already in use")                     \
	X(ELIMIT,     "a limit is exceeded (the message says which)")         \
	X(EPERM,      "not permitted for this client")                        \
	X(ECANCELED,  "the request was canceled")                             \
	X(ENOENT,     "no such request to cancel, or no such hold to reclaim") \
	X(ESHUTDOWN,  "the daemon is stopping")                               \
	X(EINTERNAL,  "the daemon failed (the message says why)")             \
	X(EDEADLK,    "waiting would close a cycle of waits (the message "      \
	              "names it)")

enum lbp_error {
	LBP_OK = 0,
#define LBP_ERRNO_ENUM(name, meaning) LBP_##name,
	LBP_ERRNO_MAP(LBP_ERRNO_ENUM)
#undef LBP_ERRNO_ENUM
	LBP_NERRORS
};

/* One field of a parsed message: its key and its decoded value (which
 * points into the message's own buffer and is NUL-terminated). */
struct lbp_field {
	char        key[LBP_KEY_MAX + 1];
	const char *value;
	size_t      len;
};

/* A parsed message.  Never freed.  Its fields' values point into its own
 * store, so a copy's values still point into the original's store: use a
 * copy only while the original lives (or parse the line again). */
struct lbp_msg {
	enum lbp_verb    verb;
	int              has_id;        /* 0: the id was "-" (replies only) */
	uint64_t         id;
	int              nfields;
	struct lbp_field fields[LBP_FIELDS_MAX];
	char             store[LBP_LINE_MAX];   /* decoded values */
};

/*
 * lbp_parse: parses one line (len bytes at line, with or without its
 * '\n'; it need not be NUL-terminated) into *m and checks it against the
 * verb's schema (required fields present, no unknown or repeated field).
 * Replies (verbs OK, ITEM, ERR) may carry fields this version does not
 * know: they are kept and not refused, so that a newer daemon can add
 * fields without breaking older clients.
 * Returns LBP_OK, or an error code with *why (when why is not NULL)
 * pointing to a static text saying what is wrong (*why is left alone on
 * success): LBP_ELIMIT for a line longer than LBP_LINE_MAX, LBP_EVERB for
 * an unknown verb, LBP_EPROTO for every other fault.  On error, m->verb is
 * the verb when it is known (else LBP_NONE), and m->has_id/m->id are set
 * whenever the id could be read, even when the verb could not, so the
 * caller can answer the request; otherwise m->has_id is 0.
 */
enum lbp_error lbp_parse(const char *line, size_t len, struct lbp_msg *m,
    const char **why);

/* lbp_get: the decoded value of field key, or NULL when m lacks it. */
const char *lbp_get(const struct lbp_msg *m, const char *key);

/*
 * Typed getters: 0 with *out set, -1 when the field is absent (*out
 * untouched: the caller's default stands), -2 when it is present but not
 * valid for the type.
 *   lbp_get_u64      decimal, 0 to UINT64_MAX, no sign, no spaces, no
 *                    leading zero (but "0")
 *   lbp_get_timeout  "inf" (INFINITY) or a finite decimal number of
 *                    seconds, [-]DIGITS[.DIGITS], negative allowed (one
 *                    try); no "+", exponent, hex, "nan" or "-inf"
 */

/* A timeout of this many seconds or more (about 317 years) means "inf":
 * the daemon's deadlines, nanoseconds of the monotonic clock in 64 bits,
 * cannot hold it. */
#define LBP_TIMEOUT_FOREVER 1e10
int lbp_get_u64(const struct lbp_msg *m, const char *key, uint64_t *out);
int lbp_get_timeout(const struct lbp_msg *m, const char *key, double *out);

/*
 * A line being formatted.  lbp_begin starts it, lbp_add_* append fields
 * (values are percent-encoded), lbp_end terminates it with '\n'.  Once a
 * line would exceed LBP_LINE_MAX, `overflow` is set and further calls do
 * nothing; lbp_end then returns -1.  `overflow` also marks a line refused
 * for a value the protocol cannot carry (a bad verb or id, a NULL string,
 * NaN), and lbp_end refuses a line lbp_parse would not accept (bad key,
 * missing required field, ...).  Keys must be valid keys.
 */
struct lbp_out {
	char   buf[LBP_LINE_MAX + 1];
	size_t len;
	int    overflow;
};

/* lbp_begin: starts a line VERB ID (has_id 0: "-"). */
void lbp_begin(struct lbp_out *o, enum lbp_verb verb, int has_id,
    uint64_t id);
void lbp_add_str(struct lbp_out *o, const char *key, const char *value);
void lbp_add_mem(struct lbp_out *o, const char *key, const void *value,
    size_t len);
void lbp_add_u64(struct lbp_out *o, const char *key, uint64_t value);
void lbp_add_i64(struct lbp_out *o, const char *key, int64_t value);
/* lbp_add_double: "inf" for +infinity, else plain decimal rounded to 6
 * decimals, without exponent, trimmed of trailing zeros (0.25: "0.25",
 * 5: "5"), whatever the locale; NaN and -infinity refuse the line. */
void lbp_add_double(struct lbp_out *o, const char *key, double value);
/* lbp_end: appends '\n' (o->buf is then NUL-terminated after it); 0, or
 * -1 when the line overflowed or lbp_parse would refuse it. */
int  lbp_end(struct lbp_out *o);

/* lbp_error_reply: a whole ERR line for request (has_id, id) with code and
 * message (NULL: none), into o.  Never overflows (the message is cut to
 * fit, at a UTF-8 character's start); a code that is not an error is sent
 * as EINTERNAL, an id that is too long as "-". */
void lbp_error_reply(struct lbp_out *o, int has_id, uint64_t id,
    enum lbp_error code, const char *message);
/* lbp_error_reply_lock: the same with the field lock=lock (not NULL; left
 * out when it does not fit): the lock a set was refused for (set.c). */
void lbp_error_reply_lock(struct lbp_out *o, int has_id, uint64_t id,
    enum lbp_error code, const char *lock, const char *message);

/* Names and texts: "ACQUIRE", "EALREADY", the meaning of an error ("OK"
 * and "success" for LBP_OK); "?" for values out of range.  lbp_verb_parse /
 * lbp_error_parse map a name back (LBP_NONE / -1 when unknown;
 * lbp_error_parse knows only the codes of ERR, not "OK"). */
const char    *lbp_verb_name(enum lbp_verb verb);
const char    *lbp_error_name(enum lbp_error code);
const char    *lbp_error_text(enum lbp_error code);
enum lbp_verb  lbp_verb_parse(const char *name, size_t len);
int            lbp_error_parse(const char *name);

/* The library's codes (LB_E*, lockbroker/codes.h) and the protocol's, one
 * map both ways (codes.c): the lock outcomes (EALREADY, ETIMEOUT, EFAILED,
 * ENOTLOCKED, ENOTMINE, EUNLOCK, EINVAL) are the same on both sides.
 * lbp_from_lb: the protocol's code for an LB_E* code; any other is
 * LBP_EINTERNAL.  lbp_to_lb: the LB_E* code for a protocol code; any
 * other is fail. */
enum lbp_error lbp_from_lb(int code);
int            lbp_to_lb(enum lbp_error code, int fail);

/* lbp_encode: percent-encodes len bytes of in into out (size bytes);
 * returns the encoded length, or -1 when it does not fit (with its NUL).
 * lbp_decode: decodes into out (size bytes, NUL-terminated); returns the
 * decoded length, or -1 on a malformed escape, %00, a byte that should
 * have been encoded, or no room (with its NUL). */
int lbp_encode(const char *in, size_t len, char *out, size_t size);
int lbp_decode(const char *in, size_t len, char *out, size_t size);

#endif /* LB_PROTOCOL_H */
