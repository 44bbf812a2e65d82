/*
 * listen_win32.c: the daemon's listener (listen.h) on Windows: a named
 * pipe, \\.\pipe\NAME (uv_pipe_bind), and a lock file beside the state
 * database refusing a second daemon (wine lets a second server bind the
 * same pipe's name).
 *
 * The pipe's security descriptor is set here, on the instance libuv made
 * at the bind (SetSecurityInfo on its handle), not by uv_pipe_chmod: that
 * one adds an entry for Everyone with FILE_GENERIC_WRITE, whose
 * FILE_APPEND_DATA is, on a pipe, FILE_CREATE_PIPE_INSTANCE: any user
 * could then serve instances of the daemon's pipe.  The descriptor is
 * the pipe's (its instances share it: a later instance's own is not
 * taken), and its DACL, protected from inheritance:
 *
 *   network logons (NU)       denied everything, first: a share's
 *                             clients never reach the daemon (they are
 *                             authenticated users too);
 *   the system (SY), the administrators (BA), the pipe's owner (OW, the
 *                             daemon's account): all rights;
 *   authenticated users (AU)  LBD_PIPE_USER_RIGHTS: reading and writing
 *                             data, nothing more;
 *   anyone else (anonymous, the guest account): no right.
 *
 * Authenticated users rather than interactive ones (IU): a service or a
 * scheduled task of an ordinary account (a service or batch logon, not
 * interactive) takes locks too.  Each client is then acted for with its
 * own process's token, one of its SID, logon session and integrity
 * level (os_users_win32.c, peertoken.c), numbered by SID and level
 * (creds.c: a record borrows no token of another level); its artefacts
 * are judged its own by their owner as well as their name (lockfs); and
 * an intent of a number the state database does not know is not acted
 * on (intents.c).  docs/WINDOWS.md, "Users on Windows", says what stays
 * open.  The pipe carries no integrity label: Windows gives it medium's,
 * so a process below medium cannot open it to write (and peertoken.c
 * refuses one anyway).
 *
 * A client other than the system, the administrators and the daemon's
 * account must open the pipe with GENERIC_READ | FILE_WRITE_DATA (as
 * wire/pipe_win32.c does), not GENERIC_WRITE, whose FILE_APPEND_DATA it
 * is not granted.
 */
#include <winsock2.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "listen.h"
#include "log.h"
#include "sid_win32.h"
#include "protocol.h"

/* What authenticated users may do with the pipe: FILE_GENERIC_READ
 * (READ_CONTROL 0x00020000 | SYNCHRONIZE 0x00100000 | FILE_READ_DATA
 * 0x1 | FILE_READ_EA 0x8 | FILE_READ_ATTRIBUTES 0x80: 0x00120089) |
 * FILE_WRITE_DATA (0x2) = 0x0012008b.  Not FILE_APPEND_DATA (0x4,
 * FILE_CREATE_PIPE_INSTANCE: serving instances of the pipe), nor
 * FILE_WRITE_EA (0x10), FILE_WRITE_ATTRIBUTES (0x100), DELETE, WRITE_DAC
 * or WRITE_OWNER. */
#define LBD_PIPE_USER_RIGHTS "0x0012008b"

/* The pipe's DACL (see the top of this file). */
#define LBD_PIPE_SDDL \
	"D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)" \
	"(A;;" LBD_PIPE_USER_RIGHTS ";;;AU)"

/* Sets the pipe's DACL on the handle of one of its instances.  0, or -1
 * with the error in *err. */
static int
pipe_dacl_set(HANDLE h, DWORD *err)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PACL                 dacl = NULL;
	BOOL                 present = FALSE, defaulted = FALSE;
	int                  r = -1;

	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
	    LBD_PIPE_SDDL, SDDL_REVISION_1, &sd, NULL) ||
	    !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
		*err = GetLastError();
		goto out;
	}
	if ((*err = SetSecurityInfo(h, SE_KERNEL_OBJECT,
	    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
	    NULL, NULL, dacl, NULL)) != ERROR_SUCCESS)
		goto out;
	r = 0;
out:
	if (sd != NULL)
		LocalFree(sd);
	return r;
}

/* lbd_listen_bind: see listen.h.  name is the pipe's whole name
 * (\\.\pipe\NAME); nothing is taken over: a pipe's name is not left
 * behind by a daemon that is gone (lbd_listen_claim refuses a second
 * daemon on the same state). */
int
lbd_listen_bind(uv_pipe_t *listener, const char *name, char *why,
    size_t size)
{
	uv_os_fd_t h;
	DWORD      err = 0;
	int        r;

	if ((r = uv_pipe_bind(listener, name)) != 0) {
		snprintf(why, size, "cannot listen on %s: %s", name,
		    uv_strerror(r));
		return -1;
	}
	if ((r = uv_fileno((uv_handle_t *)listener, &h)) != 0) {
		snprintf(why, size, "cannot listen on %s: its handle: %s",
		    name, uv_strerror(r));
		return -1;
	}
	if (pipe_dacl_set(h, &err) != 0) {
		snprintf(why, size, "cannot listen on %s: its security "
		    "descriptor: error %lu", name, (unsigned long)err);
		return -1;
	}
	return 0;
}

/* lbd_listen_default: see listen.h. */
const char *
lbd_listen_default(void)
{
	return LBP_SYSTEM_PIPE;
}

/* lbd_listen_is_relative: see listen.h.  0: a pipe's name is no path. */
int
lbd_listen_is_relative(const char *name)
{
	(void)name;
	return 0;
}

/* The single-instance mutex's DACL: all rights to the system, the
 * administrators and its owner (the daemon's account); READ_CONTROL and
 * SYNCHRONIZE to everyone, so that a daemon of another account can read
 * whose it is (mutex_is_daemons). */
#define LBD_MUTEX_SDDL \
	"D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)(A;;0x00120000;;;WD)"

/* Whether the mutex that was there, open as m (NULL: one this daemon may
 * not open), is a daemon's: its owner is the system, the administrators
 * or this daemon's user (lockfs_sid_is_trusted), or none at all (wine's
 * objects may have none).  One that may not be opened or read, or that
 * another user owns, was not made by a daemon: a daemon's grants
 * everyone READ_CONTROL.  1 or 0. */
static int
mutex_is_daemons(HANDLE m)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL;
	int                  r = 0;

	if (m != NULL && GetSecurityInfo(m, SE_KERNEL_OBJECT,
	    OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL, &sd) ==
	    ERROR_SUCCESS)
		r = owner == NULL || lockfs_sid_is_trusted(owner);
	if (sd != NULL)
		LocalFree(sd);
	return r;
}

/*
 * Makes this daemon the only one listening on pipe name: a named mutex
 * of the name's (Global\lockbrokerd!NAME, '\' as '!'), which a second
 * daemon finds there; its handle kept open (the process's end frees
 * it).  Wine lets a second server bind a pipe's name, where Windows
 * refuses it (libuv's FILE_FLAG_FIRST_PIPE_INSTANCE).  Global\, the
 * namespace of every session: a service runs in session 0 and a
 * console's daemon in its user's session, whose Local\ names differ
 * (making a Global\ mutex needs no privilege, so any user may make the
 * name first).  A mutex there that is not a daemon's (mutex_is_daemons)
 * is passed over with a warning, and so is another kind of object made
 * with that name (ERROR_INVALID_HANDLE): the pipe's first instance, which
 * Windows gives one server, and STATE.lock still refuse a second
 * daemon.  0, or -1 with why.
 */
static int
claim_name(const char *name, char *why, size_t size)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	HANDLE              m = NULL;
	char                obj[LBD_LISTEN_NAME_MAX + 32], *c;
	DWORD               err;
	int                 r = -1;

	if (snprintf(obj, sizeof(obj), "Global\\lockbrokerd!%s", name) >=
	    (int)sizeof(obj)) {
		snprintf(why, size, "%s: name too long", name);
		goto out;
	}
	for (c = obj + strlen("Global\\"); *c != '\0'; c++)
		if (*c == '\\')
			*c = '!';
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
	    LBD_MUTEX_SDDL, SDDL_REVISION_1, &sa.lpSecurityDescriptor,
	    NULL)) {
		snprintf(why, size, "cannot claim %s (%s): its security "
		    "descriptor: error %lu", name, obj,
		    (unsigned long)GetLastError());
		goto out;
	}
	m = CreateMutexExA(&sa, obj, 0, SYNCHRONIZE | READ_CONTROL);
	err = GetLastError();
	if (m != NULL && err != ERROR_ALREADY_EXISTS) {
		m = NULL;       /* kept open: the claim */
		r = 0;
	} else if (m == NULL && err != ERROR_ACCESS_DENIED &&
	    err != ERROR_INVALID_HANDLE)
		snprintf(why, size, "cannot claim %s (%s): error %lu", name,
		    obj, (unsigned long)err);
	else if (mutex_is_daemons(m))
		snprintf(why, size, "another daemon listens on %s: not "
		    "listening there", name);
	else {
		log_warn("%s: made by another user than the system, the "
		    "administrators or this daemon's, not by a daemon: passed "
		    "over (the pipe's first instance and the state's lock "
		    "refuse a second daemon)", obj);
		r = 0;
	}
out:
	if (m != NULL)
		CloseHandle(m);
	if (sa.lpSecurityDescriptor != NULL)
		LocalFree(sa.lpSecurityDescriptor);
	return r;
}

/* lbd_listen_claim: see listen.h.  The pipe's name (claim_name), then
 * STATE.lock, opened shared (never inherited) and locked whole,
 * exclusively, without waiting; its handle is kept open (never closed:
 * the process's end frees the lock, a killed daemon's too). */
int
lbd_listen_claim(const char *name, const char *state, char *why, size_t size)
{
	OVERLAPPED o;
	HANDLE     h;
	char       file[1024];
	DWORD      err;

	if (claim_name(name, why, size) != 0)
		return -1;

	if (snprintf(file, sizeof(file), "%s.lock", state) >=
	    (int)sizeof(file)) {
		snprintf(why, size, "%s.lock: path too long", state);
		return -1;
	}
	h = CreateFileA(file, GENERIC_READ | GENERIC_WRITE,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
	    OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		snprintf(why, size, "cannot open %s (the lock of the daemon of "
		    "%s): error %lu", file, state,
		    (unsigned long)GetLastError());
		return -1;
	}
	memset(&o, 0, sizeof(o));
	if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK |
	    LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &o)) {
		err = GetLastError();
		CloseHandle(h);
		if (err == ERROR_LOCK_VIOLATION || err == ERROR_IO_PENDING)
			snprintf(why, size, "another daemon runs on state %s "
			    "(%s is locked): not listening on %s", state,
			    file, name);
		else
			snprintf(why, size, "cannot lock %s (the lock of the "
			    "daemon of %s): error %lu", file, state,
			    (unsigned long)err);
		return -1;
	}
	return 0;
}
