/*
 * check_statedir_win.c: where lockbrokerd.exe keeps its state on
 * Windows and what it trusts it to, under wine: the private DACL the
 * daemon makes its own directories and files with, the judgement of a
 * security descriptor (daemon/private_win32.c, linked in), and the
 * daemon itself (daemon/lockbrokerd.exe, or $LOCKBROKERD) with no
 * --state (ProgramData set, unset, relative) and with a state directory,
 * database or file beside the database others may write; and the
 * default state directory taken back from another user
 * (daemon/reclaim_win32.c, linked in): moved aside, made at once with
 * the daemon's own owner and DACL, judged again and moved again when
 * made again in between, and the start refused after a bounded number
 * of moves.
 *
 * Wine keeps no DACL a program sets: it reads a file's back from its
 * Unix mode (the system and the owner full control, Everyone what the
 * mode gives others) and maps a DACL set to a mode, as far as the
 * entries of Everyone (measured: one allowing Everyone to write makes
 * the file's mode 0777 and reads back so; entries of other SIDs, NULL
 * DACLs, owners and the protection from inheritance are dropped).  So
 * the judgement is tested on descriptors made from SDDL, every case of
 * it, and through the daemon as far as wine keeps: Everyone's write
 * refused, and the daemon's own directory read back with no entry but
 * the system's and its user's.
 */
#include <winsock2.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "private_win32.h"
#include "reclaim_win32.h"
#include "testdaemon_win.h"
#include "testlib.h"

/* The test's own user's SID as a string (the daemon's: it runs as the
 * same user), into out. */
static void
self_string(char *out, size_t size)
{
	char *s = NULL;

	ck_assert(lbd_private_self() != NULL);
	ck_assert(ConvertSidToStringSidA(lbd_private_self(), &s));
	snprintf(out, size, "%s", s);
	LocalFree(s);
}

/* A case of the judgement: a descriptor in SDDL (each "%s" the
 * daemon's user's SID), whether it is refused, and what the reason
 * then says (two parts). */
static const struct judged {
	const char *sddl;
	int         refused;
	const char *says;
	const char *says_too;
} judged[] = {
	/* The private DACL, and owners that may be. */
	{ "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;%s)", 0, NULL, NULL },
	{ "O:SYD:P(A;;FA;;;SY)", 0, NULL, NULL },
	{ "O:%sD:P(A;;FA;;;%s)", 0, NULL, NULL },
	/* What others may have: reading, denials, CREATOR OWNER's on
	 * entries only inherited, TrustedInstaller's, OWNER RIGHTS'. */
	{ "O:BAD:(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;BU)(A;OICI;0x1200a9;;;WD)",
	  0, NULL, NULL },
	{ "O:BAD:(D;;FA;;;WD)(A;;FA;;;SY)", 0, NULL, NULL },
	{ "O:BAD:(A;OICIIO;FA;;;CO)", 0, NULL, NULL },
	{ "O:BAD:(A;OICI;FA;;;"
	  "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)",
	  0, NULL, NULL },
	{ "O:BAD:(A;;FA;;;OW)", 0, NULL, NULL },
	/* Owners that may not be. */
	{ "O:BUD:P(A;;FA;;;SY)", 1, "owner is S-1-5-32-545", "/setowner" },
	{ "O:WDD:P(A;;FA;;;SY)", 1, "owner is S-1-1-0", "/setowner" },
	/* No DACL: everyone everything (NULL: a NULL DACL, made by
	 * null_dacl, since wine's SDDL makes "D:NO_ACCESS_CONTROL" an empty
	 * DACL). */
	{ NULL, 1, "no DACL", "/grant:r" },
	/* Each changing right, to another SID. */
	{ "O:BAD:(A;;0x2;;;BU)", 1, "S-1-5-32-545", "FILE_WRITE_DATA" },
	{ "O:BAD:(A;;0x4;;;AU)", 1, "S-1-5-11", "FILE_APPEND_DATA" },
	{ "O:BAD:(A;;SD;;;WD)", 1, "S-1-1-0", "DELETE" },
	{ "O:BAD:(A;;0x40;;;IU)", 1, "S-1-5-4", "FILE_DELETE_CHILD" },
	{ "O:BAD:(A;;WD;;;BU)", 1, "S-1-5-32-545", "WRITE_DAC" },
	{ "O:BAD:(A;;WO;;;BU)", 1, "S-1-5-32-545", "WRITE_OWNER" },
	{ "O:BAD:(A;;GW;;;BU)", 1, "S-1-5-32-545", "GENERIC_WRITE" },
	{ "O:BAD:(A;;GA;;;BU)", 1, "S-1-5-32-545", "GENERIC_ALL" },
	{ "O:BAD:(A;;FA;;;S-1-5-21-1-2-3-1001)", 1, "S-1-5-21-1-2-3-1001",
	  "/remove:g *S-1-5-21-1-2-3-1001" },
	/* Entries only inherited count (what a file made there gets);
	 * CREATOR OWNER's counts on an entry that is not only inherited;
	 * a denial after an allowing entry takes nothing back here. */
	{ "O:BAD:(A;OICIIO;0x2;;;BU)", 1, "S-1-5-32-545",
	  "on what is made in it" },
	{ "O:BAD:(A;;FA;;;CO)", 1, "S-1-3-0", "FILE_WRITE_DATA" },
	{ "O:BAD:(A;;FA;;;WD)(D;;FA;;;WD)", 1, "S-1-1-0", "icacls" },
};

/* A security descriptor owned by the administrators with a NULL DACL
 * (everyone everything); the caller frees it (LocalFree). */
static PSECURITY_DESCRIPTOR
null_dacl(void)
{
	PSECURITY_DESCRIPTOR sd;
	static BYTE          ba[SECURITY_MAX_SID_SIZE];
	DWORD                n = sizeof(ba);

	ck_assert((sd = LocalAlloc(LPTR, SECURITY_DESCRIPTOR_MIN_LENGTH)) !=
	    NULL);
	ck_assert(InitializeSecurityDescriptor(sd,
	    SECURITY_DESCRIPTOR_REVISION));
	ck_assert(CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, ba,
	    &n));
	ck_assert(SetSecurityDescriptorOwner(sd, ba, FALSE));
	ck_assert(SetSecurityDescriptorDacl(sd, TRUE, NULL, FALSE));
	return sd;
}

/* Each case of judged: refused or not, and the reason naming the path,
 * the SID and the right. */
START_TEST(judge_cases)
{
	const struct judged *c = &judged[_i];
	PSECURITY_DESCRIPTOR sd = NULL;
	char                 self[256], sddl[1024], why[2048];
	int                  r;

	self_string(self, sizeof(self));
	snprintf(sddl, sizeof(sddl), c->sddl != NULL ? c->sddl : "(a NULL "
	    "DACL)", self, self);
	if (c->sddl == NULL)
		sd = null_dacl();
	else
		ck_assert_msg(
		    ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl,
		    SDDL_REVISION_1, &sd, NULL), "%s: error %lu", sddl,
		    (unsigned long)GetLastError());
	why[0] = '\0';
	r = lbd_private_judge("state directory", "C:/st", LBD_PRIVATE_DIR, sd,
	    lbd_private_self(), why, sizeof(why));
	/* Owned by the trusted unless refused for its owner: a default
	 * state directory then moved aside (lbd_statedir_reclaim). */
	ck_assert_msg(lbd_private_owned(sd, lbd_private_self()) ==
	    !(c->refused && strstr(c->says, "owner is") != NULL), "%s", sddl);
	LocalFree(sd);
	ck_assert_msg(r == (c->refused ? -1 : 0), "%s: %d (%s)", sddl, r,
	    why);
	if (c->refused)
		ck_assert_msg(strstr(why, "state directory C:/st") != NULL &&
		    strstr(why, c->says) != NULL &&
		    strstr(why, c->says_too) != NULL, "%s: %s", sddl, why);
}
END_TEST

/* How many entries of the DACL of sd are sid's (every entry's: NULL);
 * with all, each of them asserted to allow everything (FA) with the
 * inheritance flags. */
static unsigned
entries_of(PSECURITY_DESCRIPTOR sd, PSID sid, int all, BYTE flags)
{
	ACL_SIZE_INFORMATION info;
	ACCESS_ALLOWED_ACE  *ace;
	PACL                 dacl = NULL;
	BOOL                 present = FALSE, defaulted = FALSE;
	DWORD                i;
	unsigned             n = 0;

	ck_assert(GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted));
	ck_assert(present && dacl != NULL);
	ck_assert(GetAclInformation(dacl, &info, sizeof(info),
	    AclSizeInformation));
	for (i = 0; i < info.AceCount; i++) {
		ck_assert(GetAce(dacl, i, (void **)&ace));
		if (sid != NULL && !EqualSid(sid, (PSID)&ace->SidStart))
			continue;
		n++;
		if (!all)
			continue;
		ck_assert_int_eq(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
		ck_assert_int_eq(ace->Header.AceFlags, flags);
		ck_assert_int_eq(ace->Mask, FILE_ALL_ACCESS);
	}
	return n;
}

/* A well-known SID, into buf (SECURITY_MAX_SID_SIZE bytes). */
static PSID
known(WELL_KNOWN_SID_TYPE type, BYTE *buf)
{
	DWORD n = SECURITY_MAX_SID_SIZE;

	ck_assert(CreateWellKnownSid(type, NULL, buf, &n));
	return buf;
}

/* The private DACL, for a directory and a file: protected, three
 * entries allowing all, the system's, the administrators' and the
 * daemon's user's, inherited by what a directory holds (no owner: the
 * maker's). */
START_TEST(private_sd_made)
{
	static const int    kinds[] = { LBD_PRIVATE_DIR, LBD_PRIVATE_FILE };
	PSECURITY_DESCRIPTOR sd;
	SECURITY_DESCRIPTOR_CONTROL control;
	DWORD               rev;
	BYTE                sy[SECURITY_MAX_SID_SIZE], ba[SECURITY_MAX_SID_SIZE];
	BYTE                flags;
	size_t              i;

	for (i = 0; i < 2; i++) {
		flags = kinds[i] == LBD_PRIVATE_DIR ?
		    OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE : 0;
		ck_assert((sd = lbd_private_sd(kinds[i])) != NULL);
		ck_assert(GetSecurityDescriptorControl(sd, &control, &rev));
		ck_assert(control & SE_DACL_PROTECTED);
		ck_assert_uint_eq(entries_of(sd, NULL, 1, flags), 3);
		ck_assert_uint_eq(entries_of(sd, known(WinLocalSystemSid, sy),
		    1, flags), 1);
		ck_assert_uint_eq(entries_of(sd,
		    known(WinBuiltinAdministratorsSid, ba), 1, flags), 1);
		ck_assert_uint_eq(entries_of(sd, lbd_private_self(), 1, flags),
		    1);
		LocalFree(sd);
	}
}
END_TEST

/* The security descriptor (owner, DACL) of path as Windows (wine)
 * reads it back; the caller frees it (LocalFree). */
static PSECURITY_DESCRIPTOR
sd_of(const char *path)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	DWORD                err;

	err = GetNamedSecurityInfoA(path, SE_FILE_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, NULL,
	    NULL, NULL, NULL, &sd);
	ck_assert_msg(err == ERROR_SUCCESS, "%s: error %lu", path,
	    (unsigned long)err);
	return sd;
}

/* Gives path an entry allowing Everyone all, besides its own. */
static void
everyone_may_write(const char *path)
{
	EXPLICIT_ACCESSA     ea;
	PSECURITY_DESCRIPTOR sd = sd_of(path);
	PACL                 dacl = NULL, more = NULL;
	BOOL                 present, defaulted;
	BYTE                 wd[SECURITY_MAX_SID_SIZE];

	ck_assert(GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted));
	memset(&ea, 0, sizeof(ea));
	ea.grfAccessPermissions = FILE_ALL_ACCESS;
	ea.grfAccessMode = GRANT_ACCESS;
	ea.Trustee.TrusteeForm = TRUSTEE_IS_SID;
	ea.Trustee.ptstrName = (char *)known(WinWorldSid, wd);
	ck_assert(SetEntriesInAclA(1, &ea, dacl, &more) == ERROR_SUCCESS);
	ck_assert(SetNamedSecurityInfoA((char *)path, SE_FILE_OBJECT,
	    DACL_SECURITY_INFORMATION, NULL, NULL, more, NULL) ==
	    ERROR_SUCCESS);
	LocalFree(more);
	LocalFree(sd);
}

/* A daemon started for a test: its process, pipe and output. */
struct daemon {
	HANDLE proc;
	char   pipe[128];
	char   out[PATH_MAX];
};

/* Starts lockbrokerd with the arguments args (after --socket PIPE) on a
 * new pipe, its output into dir\out.txt, in a job that ends it with the
 * test. */
static void
daemon_spawn(struct daemon *d, const char *dir, const char *args)
{
	static unsigned n;
	static HANDLE   job;
	char            line[4 * PATH_MAX];

	if (job == NULL)
		ck_assert((job = td_job()) != NULL);
	snprintf(d->pipe, sizeof(d->pipe), "\\\\.\\pipe\\lbstate-%lu-%u",
	    (unsigned long)GetCurrentProcessId(), n++);
	snprintf(d->out, sizeof(d->out), "%s\\out.txt", dir);
	ck_assert((size_t)snprintf(line, sizeof(line), "--socket %s %s",
	    d->pipe, args) < sizeof(line));
	d->proc = td_daemon_spawn(job, line, d->out);
}

/* Waits (up to a minute) until d's pipe answers (1) or d ends (0). */
static int
daemon_listens(const struct daemon *d)
{
	double until;

	for (until = tl_now() + 60; tl_now() < until; tl_sleep(0.05)) {
		if (WaitNamedPipeA(d->pipe, 100))
			return 1;
		if (WaitForSingleObject(d->proc, 0) != WAIT_TIMEOUT)
			return 0;
	}
	return 0;
}

/* Ends d, and waits for its end; its exit status. */
static DWORD
daemon_end(struct daemon *d)
{
	DWORD code = 0;

	if (WaitForSingleObject(d->proc, 0) == WAIT_TIMEOUT)
		TerminateProcess(d->proc, 137);
	WaitForSingleObject(d->proc, 10000);
	GetExitCodeProcess(d->proc, &code);
	CloseHandle(d->proc);
	return code;
}

/* Whether d's output holds what. */
static int
daemon_said(const struct daemon *d, const char *what)
{
	static char text[64 * 1024];

	return tl_read_text(d->out, text, sizeof(text)) > 0 &&
	    strstr(text, what) != NULL;
}

/* With no --state, a daemon of an administrator (wine's one user)
 * keeps its state in %ProgramData%\lockbroker (here a private
 * directory the test names for the child): made there, in a directory
 * whose DACL, read back, allows nothing to anybody but the system, the
 * administrators and the daemon's user; and a second start finds it
 * fit, and does not move it aside as another user's. */
START_TEST(default_state_under_programdata)
{
	struct tl_place      p;
	struct daemon        d;
	PSECURITY_DESCRIPTOR sd;
	BYTE                 wd[SECURITY_MAX_SID_SIZE];
	char                 pd[PATH_MAX], dir[PATH_MAX], state[PATH_MAX];
	char                 why[1024], said[PATH_MAX + 32], *c;
	char                 was[PATH_MAX], aside[PATH_MAX + 32];
	WIN32_FIND_DATAA     found;
	int                  round;

	tl_place_make(&p, "ProgramData");
	snprintf(pd, sizeof(pd), "%s", p.path);
	tl_mkdir(pd);
	snprintf(dir, sizeof(dir), "%s\\lockbroker", pd);
	snprintf(state, sizeof(state), "%s\\state.sqlite", dir);
	snprintf(said, sizeof(said), "(state %s/lockbroker/state.sqlite",
	    pd);
	for (c = said; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(was, sizeof(was), "%s", getenv("ProgramData") != NULL ?
	    getenv("ProgramData") : "");
	ck_assert_int_eq(_putenv_s("ProgramData", pd), 0);
	for (round = 0; round < 2; round++) {
		daemon_spawn(&d, p.dir, "--debug");
		ck_assert_msg(daemon_listens(&d), "the daemon did not listen "
		    "(see %s)", d.out);
		ck_assert_msg(daemon_said(&d, said), "%s: not in %s", said,
		    d.out);
		ck_assert_msg(tl_exists(state), "%s", state);
		daemon_end(&d);
	}
	ck_assert_int_eq(_putenv_s("ProgramData", was), 0);
	/* Its own, the second start's to use, never moved aside. */
	snprintf(aside, sizeof(aside), "%s\\lockbroker.refused-*", pd);
	ck_assert(FindFirstFileA(aside, &found) == INVALID_HANDLE_VALUE);
	sd = sd_of(dir);
	ck_assert_uint_eq(entries_of(sd, known(WinWorldSid, wd), 0, 0), 0);
	ck_assert_msg(lbd_private_judge("state directory", dir,
	    LBD_PRIVATE_DIR, sd, lbd_private_self(), why, sizeof(why)) == 0,
	    "%s", why);
	LocalFree(sd);
}
END_TEST

/* With no --state and ProgramData unset, or not an absolute path, the
 * daemon refuses to start, naming the variable; nothing is made where
 * the relative one would lead from its working directory ("/"). */
START_TEST(default_state_needs_programdata)
{
	static const char *const values[] = { "", "lockbroker-pd" };
	struct tl_place          p;
	struct daemon            d;
	char                     was[PATH_MAX];
	size_t                   i;

	snprintf(was, sizeof(was), "%s", getenv("ProgramData") != NULL ?
	    getenv("ProgramData") : "");
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		tl_place_make(&p, "x");
		ck_assert_int_eq(_putenv_s("ProgramData", values[i]), 0);
		daemon_spawn(&d, p.dir, "--debug");
		ck_assert_int_eq(_putenv_s("ProgramData", was), 0);
		ck_assert(!daemon_listens(&d));
		ck_assert_int_eq(daemon_end(&d), 1);
		ck_assert_msg(daemon_said(&d, "no state path: give --state or "
		    "set ProgramData to an absolute path"), "see %s", d.out);
		ck_assert(!tl_exists("/lockbroker-pd"));
	}
}
END_TEST

/* A state directory whose DACL lets Everyone write (wine keeps that
 * much) is refused: the daemon ends with 1 before it listens, naming
 * the directory, the SID, a right and the fix, and makes nothing
 * there; the same for the state database. */
/* Starts a daemon in dir with --state state, which must refuse to start
 * saying said, naming Everyone, the right and the fix, before it takes
 * the single-instance lock. */
static void
start_refused(const char *dir, const char *state, const char *said)
{
	struct daemon d;
	char          args[PATH_MAX + 16];

	snprintf(args, sizeof(args), "--state \"%s\"", state);
	daemon_spawn(&d, dir, args);
	ck_assert(!daemon_listens(&d));
	ck_assert_int_eq(daemon_end(&d), 1);
	ck_assert_msg(daemon_said(&d, said), "%s: not in %s", said, d.out);
	ck_assert_msg(daemon_said(&d, "S-1-1-0") &&
	    daemon_said(&d, "FILE_WRITE_DATA") &&
	    daemon_said(&d, "icacls"), "see %s", d.out);
	snprintf(args, sizeof(args), "%s.lock", state);
	ck_assert(!tl_exists(args));
}

/* A place for state.sqlite, its path written with '/' throughout. */
static void
state_place(struct tl_place *p)
{
	char *c;

	tl_place_make(p, "state.sqlite");
	for (c = p->path; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
}

START_TEST(others_may_write_refused)
{
	struct tl_place p;
	char            said[PATH_MAX + 64];
	int             file;

	for (file = 0; file < 2; file++) {
		state_place(&p);
		if (file) {
			tl_write_text(p.path, "");
			everyone_may_write(p.path);
			snprintf(said, sizeof(said), "state database %s may "
			    "be changed by others", p.path);
		} else {
			everyone_may_write(p.dir);
			snprintf(said, sizeof(said), "state directory %.*s may "
			    "be changed by others", (int)(strrchr(p.path, '/')
			    - p.path), p.path);
		}
		start_refused(p.dir, p.path, said);
		ck_assert_int_eq(tl_exists(p.path), file);
	}
}
END_TEST

/* A file the daemon keeps beside the state database (one it reads what
 * it acts on from) that another may change refuses the start, named,
 * left as it was, the database not opened: one left by a directory
 * that was once others' to write, whose owner would re-grant himself
 * what the daemon's making it private took. */
START_TEST(companion_others_may_write_refused)
{
	static const char *const companions[] = { "-intents", "-wal" };
	struct tl_place p;
	char            file[PATH_MAX + 16], said[PATH_MAX + 96];
	size_t          i;

	for (i = 0; i < sizeof(companions) / sizeof(companions[0]); i++) {
		state_place(&p);
		snprintf(file, sizeof(file), "%s%s", p.path, companions[i]);
		tl_write_text(file, "planted\n");
		everyone_may_write(file);
		snprintf(said, sizeof(said), "file beside the state database "
		    "%s may be changed by others", file);
		start_refused(p.dir, p.path, said);
		ck_assert(!tl_exists(p.path));
		ck_assert(tl_exists(file));
	}
}
END_TEST

/* The other user of the reclaim tests: wine gives every file one owner,
 * so a directory is "another's" here when it holds a file named
 * intruder; after each move aside he makes the directory again, so
 * many times (remakes; -1: every time), his own (with that file) or,
 * trusted, a directory of an administrator's (without it). */
struct intruder {
	int      remakes;
	int      trusted;
	unsigned moves;
	char     last_aside[PATH_MAX + 64];
};

/* The stand-in for the look at the owner (reclaim_win32.h): absent, or
 * another's when the directory holds "intruder", else trusted. */
static enum lbd_reclaim_found
intruder_look(const char *dir, int *link, void *arg)
{
	char file[PATH_MAX + 16];

	(void)arg;
	*link = 0;
	if (GetFileAttributesA(dir) == INVALID_FILE_ATTRIBUTES)
		return LBD_RECLAIM_ABSENT;
	snprintf(file, sizeof(file), "%s\\intruder", dir);
	return tl_exists(file) ? LBD_RECLAIM_OTHERS : LBD_RECLAIM_TRUSTED;
}

/* After a move aside: the intruder makes the directory again, as long
 * as he has remakes left. */
static void
intruder_moved(const char *dir, const char *aside, void *arg)
{
	struct intruder *in = arg;
	char             file[PATH_MAX + 16];

	in->moves++;
	snprintf(in->last_aside, sizeof(in->last_aside), "%s", aside);
	ck_assert_msg(tl_exists(aside), "%s: not there after the move", aside);
	if (in->remakes == 0)
		return;
	if (in->remakes > 0)
		in->remakes--;
	tl_mkdir(dir);
	if (!in->trusted) {
		snprintf(file, sizeof(file), "%s\\intruder", dir);
		tl_write_text(file, "mine\n");
	}
}

/* The intruder's directory at dir (in a parent of the test's), as
 * before the daemon's first start. */
static void
intruder_dir(struct tl_place *p, char *dir, size_t size)
{
	char file[PATH_MAX + 16];

	tl_place_make(p, "ProgramData");
	tl_mkdir(p->path);
	snprintf(dir, size, "%s\\lockbroker", p->path);
	tl_mkdir(dir);
	snprintf(file, sizeof(file), "%s\\intruder", dir);
	tl_write_text(file, "mine\n");
}

/* How many directories dir.refused-* there are beside dir, and whether
 * each holds the intruder's file. */
static unsigned
asides_of_intruder(const char *dir)
{
	WIN32_FIND_DATAA found;
	HANDLE           h;
	char             pattern[PATH_MAX + 16], file[2 * PATH_MAX];
	unsigned         n = 0;

	snprintf(pattern, sizeof(pattern), "%s.refused-*", dir);
	if ((h = FindFirstFileA(pattern, &found)) == INVALID_HANDLE_VALUE)
		return 0;
	do {
		snprintf(file, sizeof(file), "%.*s\\%s\\intruder",
		    (int)(strrchr(dir, '\\') - dir), dir, found.cFileName);
		ck_assert_msg(tl_exists(file), "%s: not the intruder's", file);
		n++;
	} while (FindNextFileA(h, &found));
	FindClose(h);
	return n;
}

/* Asserts that dir is the daemon's own, made by lbd_reclaim_dir: no
 * intruder's file in it, and its DACL read back private (wine keeps
 * what it can of it: no entry of Everyone's) and fit by the judgement
 * the daemon makes next. */
static void
assert_made_private(const char *dir)
{
	PSECURITY_DESCRIPTOR sd;
	BYTE                 wd[SECURITY_MAX_SID_SIZE];
	char                 file[PATH_MAX + 16], why[1024];

	snprintf(file, sizeof(file), "%s\\intruder", dir);
	ck_assert_msg(!tl_exists(file), "%s: the intruder's still", dir);
	sd = sd_of(dir);
	ck_assert_uint_eq(entries_of(sd, known(WinWorldSid, wd), 0, 0), 0);
	ck_assert_msg(lbd_private_judge("state directory", dir,
	    LBD_PRIVATE_DIR, sd, lbd_private_self(), why, sizeof(why)) == 0,
	    "%s", why);
	ck_assert(lbd_private_owned(sd, lbd_private_self()));
	LocalFree(sd);
}

/* Another user's directory moved aside once, nobody making it again:
 * moved (the message names both), and the directory made at once,
 * private. */
START_TEST(reclaim_moves_once)
{
	struct intruder        in = { 0, 0, 0, "" };
	struct lbd_reclaim_ops ops = { intruder_look, intruder_moved, &in };
	struct tl_place        p;
	char                   dir[PATH_MAX], moved[2048], why[2048];

	intruder_dir(&p, dir, sizeof(dir));
	ck_assert_msg(lbd_reclaim_dir(dir, &ops, moved, why, sizeof(why)) ==
	    0, "%s", why);
	ck_assert_uint_eq(in.moves, 1);
	ck_assert_uint_eq(asides_of_intruder(dir), 1);
	ck_assert_msg(strstr(moved, dir) != NULL &&
	    strstr(moved, in.last_aside) != NULL && strstr(moved,
	    "another user's") != NULL, "%s", moved);
	assert_made_private(dir);
}
END_TEST

/* Made again by the intruder after each of the first two moves: judged
 * again each time (his, by its owner), moved again, and then made by
 * the daemon, private; the message counts the moves. */
START_TEST(reclaim_remade_moved_again)
{
	struct intruder        in = { 2, 0, 0, "" };
	struct lbd_reclaim_ops ops = { intruder_look, intruder_moved, &in };
	struct tl_place        p;
	char                   dir[PATH_MAX], moved[2048], why[2048];

	intruder_dir(&p, dir, sizeof(dir));
	ck_assert_msg(lbd_reclaim_dir(dir, &ops, moved, why, sizeof(why)) ==
	    0, "%s", why);
	ck_assert_uint_eq(in.moves, 3);
	ck_assert_uint_eq(asides_of_intruder(dir), 3);
	ck_assert_msg(strstr(moved, "made again by others 2 times") != NULL &&
	    strstr(moved, in.last_aside) != NULL, "%s", moved);
	assert_made_private(dir);
}
END_TEST

/* Made again by the intruder after every move: moved LBD_RECLAIM_MOVES
 * times, no more, then refused, the reason naming the directory, the
 * count and what to do; his last directory left in place. */
START_TEST(reclaim_remade_for_ever_refused)
{
	struct intruder        in = { -1, 0, 0, "" };
	struct lbd_reclaim_ops ops = { intruder_look, intruder_moved, &in };
	struct tl_place        p;
	char                   dir[PATH_MAX], moved[2048], why[2048];
	char                   said[PATH_MAX + 64], file[PATH_MAX + 16];

	intruder_dir(&p, dir, sizeof(dir));
	ck_assert_int_eq(lbd_reclaim_dir(dir, &ops, moved, why, sizeof(why)),
	    -1);
	ck_assert_uint_eq(in.moves, LBD_RECLAIM_MOVES);
	ck_assert_uint_eq(asides_of_intruder(dir), LBD_RECLAIM_MOVES);
	snprintf(said, sizeof(said), "the state directory %s is another "
	    "user's", dir);
	ck_assert_msg(strstr(why, said) != NULL, "%s", why);
	snprintf(said, sizeof(said), "moved aside %d times",
	    LBD_RECLAIM_MOVES);
	ck_assert_msg(strstr(why, said) != NULL &&
	    strstr(why, "give --state") != NULL, "%s", why);
	snprintf(file, sizeof(file), "%s\\intruder", dir);
	ck_assert(tl_exists(file));
	ck_assert_str_eq(moved, "");
}
END_TEST

/* Made again after the move by one of the trusted (an administrator,
 * say): taken as it is (its DACL is the judgement's, later), not moved;
 * a trusted one's directory found first is left alone, nothing moved;
 * nothing there: made at once, private. */
START_TEST(reclaim_trusted_taken)
{
	struct intruder        in = { 1, 1, 0, "" };
	struct lbd_reclaim_ops ops = { intruder_look, intruder_moved, &in };
	struct tl_place        p, q;
	char                   dir[PATH_MAX], moved[2048], why[2048];

	intruder_dir(&p, dir, sizeof(dir));
	ck_assert_msg(lbd_reclaim_dir(dir, &ops, moved, why, sizeof(why)) ==
	    0, "%s", why);
	ck_assert_uint_eq(in.moves, 1);
	ck_assert_uint_eq(asides_of_intruder(dir), 1);
	ck_assert(tl_exists(dir));
	ck_assert_msg(strstr(moved, in.last_aside) != NULL, "%s", moved);
	/* Now the trusted one's: left. */
	in.moves = 0;
	ck_assert_msg(lbd_reclaim_dir(dir, &ops, moved, why, sizeof(why)) ==
	    0, "%s", why);
	ck_assert_uint_eq(in.moves, 0);
	ck_assert_str_eq(moved, "");
	/* Nothing there. */
	tl_place_make(&q, "ProgramData");
	tl_mkdir(q.path);
	snprintf(dir, sizeof(dir), "%s\\lockbroker", q.path);
	ck_assert_msg(lbd_reclaim_dir(dir, &ops, moved, why, sizeof(why)) ==
	    0, "%s", why);
	ck_assert_uint_eq(in.moves, 0);
	ck_assert_str_eq(moved, "");
	assert_made_private(dir);
}
END_TEST

static Suite *
statedir_win_suite(void)
{
	Suite *s = suite_create("statedir_win");
	TCase *t = tcase_create("judge");

	tcase_add_loop_test(t, judge_cases, 0,
	    (int)(sizeof(judged) / sizeof(judged[0])));
	tcase_add_test(t, private_sd_made);
	suite_add_tcase(s, t);
	t = tcase_create("reclaim");
	tcase_add_test(t, reclaim_moves_once);
	tcase_add_test(t, reclaim_remade_moved_again);
	tcase_add_test(t, reclaim_remade_for_ever_refused);
	tcase_add_test(t, reclaim_trusted_taken);
	suite_add_tcase(s, t);
	t = tcase_create("daemon");
	tcase_set_timeout(t, 300);
	tcase_add_test(t, default_state_under_programdata);
	tcase_add_test(t, default_state_needs_programdata);
	tcase_add_test(t, others_may_write_refused);
	tcase_add_test(t, companion_others_may_write_refused);
	suite_add_tcase(s, t);
	return s;
}

int
main(int argc, char **argv)
{
	int r;

	if ((r = td_child(argc, argv)) != -1)
		return r;
	if (td_daemon_exe()[0] == '\0' || tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_statedir_win", statedir_win_suite(), CK_ENV);
}
