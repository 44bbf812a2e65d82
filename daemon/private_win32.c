/*
 * private_win32.c: the daemon's own directories and files kept to
 * itself on Windows (private_win32.h): the protected DACL it makes them
 * with (SDDL: SY, BA and its own user's SID, full control), and the
 * judgement of a security descriptor (owner, then every entry of the
 * DACL that allows something).
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "private_win32.h"

/* TrustedInstaller (NT SERVICE\TrustedInstaller), which owns and may
 * change the system's own files. */
#define TRUSTED_INSTALLER \
	"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

/* The rights that change a directory or file or what it holds (see
 * private_win32.h), with their names for the messages. */
static const struct right {
	DWORD       mask;
	const char *name;
} changing[] = {
	{ GENERIC_ALL,       "GENERIC_ALL" },
	{ GENERIC_WRITE,     "GENERIC_WRITE" },
	{ FILE_WRITE_DATA,   "FILE_WRITE_DATA/FILE_ADD_FILE" },
	{ FILE_APPEND_DATA,  "FILE_APPEND_DATA/FILE_ADD_SUBDIRECTORY" },
	{ DELETE,            "DELETE" },
	{ FILE_DELETE_CHILD, "FILE_DELETE_CHILD" },
	{ WRITE_DAC,         "WRITE_DAC" },
	{ WRITE_OWNER,       "WRITE_OWNER" },
};

/* The daemon's own user, read once (self_read). */
static BYTE      self_buf[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
static PSID      self_sid;
static INIT_ONCE self_once = INIT_ONCE_STATIC_INIT;

/* Reads the daemon's user from its process token into self_sid (left
 * NULL when it cannot be read). */
static BOOL CALLBACK
self_read(PINIT_ONCE once, void *arg, void **ctx)
{
	HANDLE t;
	DWORD  n;

	(void)once;
	(void)arg;
	(void)ctx;
	if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &t)) {
		if (GetTokenInformation(t, TokenUser, self_buf,
		    sizeof(self_buf), &n))
			self_sid = ((TOKEN_USER *)self_buf)->User.Sid;
		CloseHandle(t);
	}
	return TRUE;
}

/* lbd_private_self: see private_win32.h. */
PSID
lbd_private_self(void)
{
	InitOnceExecuteOnce(&self_once, self_read, NULL, NULL);
	if (self_sid == NULL)
		errno = EACCES;
	return self_sid;
}

/* The private security descriptor of lbd_private_sd, with the daemon's
 * user as its owner when owned.  Made from SDDL with the daemon's
 * user's SID as a string. */
static PSECURITY_DESCRIPTOR
private_sd(int kind, int owned)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	const char          *inherit = kind == LBD_PRIVATE_DIR ? "OICI" : "";
	char                *self = NULL, sddl[SECURITY_MAX_SID_SIZE * 6 + 64];
	char                 owner[SECURITY_MAX_SID_SIZE * 2 + 8] = "";

	if (lbd_private_self() == NULL)
		goto out;
	if (!ConvertSidToStringSidA(lbd_private_self(), &self)) {
		errno = ENOMEM;
		goto out;
	}
	if (owned)
		snprintf(owner, sizeof(owner), "O:%s", self);
	snprintf(sddl, sizeof(sddl), "%sD:P(A;%s;FA;;;SY)(A;%s;FA;;;BA)"
	    "(A;%s;FA;;;%s)", owner, inherit, inherit, inherit, self);
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl,
	    SDDL_REVISION_1, &sd, NULL)) {
		sd = NULL;
		errno = ENOMEM;
	}
out:
	if (self != NULL)
		LocalFree(self);
	return sd;
}

/* lbd_private_sd: see private_win32.h. */
PSECURITY_DESCRIPTOR
lbd_private_sd(int kind)
{
	return private_sd(kind, 0);
}

/* lbd_private_sd_owned: see private_win32.h. */
PSECURITY_DESCRIPTOR
lbd_private_sd_owned(int kind)
{
	return private_sd(kind, 1);
}

/* lbd_private_set: see private_win32.h.  SetSecurityInfo, the DACL
 * protected (the entries the parent gives are dropped). */
int
lbd_private_set(HANDLE h)
{
	BY_HANDLE_FILE_INFORMATION fi;
	PSECURITY_DESCRIPTOR       sd = NULL;
	PACL                       dacl = NULL;
	BOOL                       present = FALSE, defaulted = FALSE;
	DWORD                      err;
	int                        r = -1, saved;

	if (!GetFileInformationByHandle(h, &fi)) {
		errno = EBADF;
		goto out;
	}
	if ((sd = lbd_private_sd(fi.dwFileAttributes &
	    FILE_ATTRIBUTE_DIRECTORY ? LBD_PRIVATE_DIR :
	    LBD_PRIVATE_FILE)) == NULL)
		goto out;
	if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
		errno = EINVAL;
		goto out;
	}
	if ((err = SetSecurityInfo(h, SE_FILE_OBJECT,
	    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
	    NULL, NULL, dacl, NULL)) != ERROR_SUCCESS) {
		errno = err == ERROR_ACCESS_DENIED ? EACCES : EIO;
		goto out;
	}
	r = 0;
out:
	saved = errno;
	if (sd != NULL)
		LocalFree(sd);
	errno = saved;
	return r;
}

/* Whether sid is trusted (see private_win32.h), self the daemon's
 * user. */
static int
trusted(PSID sid, PSID self)
{
	return IsWellKnownSid(sid, WinLocalSystemSid) ||
	    IsWellKnownSid(sid, WinBuiltinAdministratorsSid) ||
	    (self != NULL && EqualSid(sid, self));
}

/* lbd_private_owned: see private_win32.h. */
int
lbd_private_owned(PSECURITY_DESCRIPTOR sd, PSID self)
{
	PSID owner = NULL;
	BOOL defaulted = FALSE;

	return GetSecurityDescriptorOwner(sd, &owner, &defaulted) &&
	    owner != NULL && trusted(owner, self);
}

/* sid as a string, and its account's name in brackets when it has one,
 * into out (size bytes). */
static void
sid_name(PSID sid, char *out, size_t size)
{
	SID_NAME_USE use;
	char        *s = NULL, name[128], domain[128];
	DWORD        nlen = sizeof(name), dlen = sizeof(domain);

	if (!ConvertSidToStringSidA(sid, &s))
		s = NULL;
	if (LookupAccountSidA(NULL, sid, name, &nlen, domain, &dlen, &use))
		snprintf(out, size, "%s (%s%s%s)", s != NULL ? s : "?",
		    domain, domain[0] != '\0' ? "\\" : "", name);
	else
		snprintf(out, size, "%s", s != NULL ? s : "?");
	if (s != NULL)
		LocalFree(s);
}

/* The names of the changing rights of mask, '|' between them, into out
 * (size bytes). */
static void
rights_names(DWORD mask, char *out, size_t size)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(changing) / sizeof(changing[0]); i++)
		if ((mask & changing[i].mask) && len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s",
			    len > 0 ? "|" : "", changing[i].name);
}

/* Whether the allowing entry ace (ACCESS_ALLOWED_ACE's layout) for sid
 * is one another may not have: neither a trusted SID's, nor CREATOR
 * OWNER's on an entry only inherited, nor OWNER RIGHTS', nor
 * TrustedInstaller's. */
static int
untrusted_entry(const ACE_HEADER *ace, PSID sid, PSID self)
{
	char *s = NULL;
	int   r;

	if (trusted(sid, self) || IsWellKnownSid(sid, WinCreatorOwnerRightsSid)
	    || (IsWellKnownSid(sid, WinCreatorOwnerSid) &&
	    (ace->AceFlags & INHERIT_ONLY_ACE)))
		return 0;
	r = !ConvertSidToStringSidA(sid, &s) ||
	    strcmp(s, TRUSTED_INSTALLER) != 0;
	if (s != NULL)
		LocalFree(s);
	return r;
}

/* The reason an owner may not be (judge). */
static void
owner_refused(const char *what, const char *path, PSID owner,
    const char *self, char *why, size_t size)
{
	char who[SECURITY_MAX_SID_SIZE * 4 + 300];

	if (owner != NULL)
		sid_name(owner, who, sizeof(who));
	snprintf(why, size, "%s %s may be changed by others: its owner is "
	    "%s, not the system, the administrators or the daemon's user %s, "
	    "and an owner may change its DACL: give it to the administrators "
	    "(icacls \"%s\" /setowner *S-1-5-32-544) and look at what it "
	    "holds", what, path, owner != NULL ? who : "nobody", self, path);
}

/* The reason an entry of a DACL may not be, ace for sid, whose
 * changing rights are names (judge). */
static void
entry_refused(const char *what, const char *path, const ACE_HEADER *ace,
    PSID sid, const char *names, const char *self, char *why, size_t size)
{
	char who[SECURITY_MAX_SID_SIZE * 4 + 300];

	if (ace->AceType != ACCESS_ALLOWED_ACE_TYPE &&
	    ace->AceType != ACCESS_ALLOWED_CALLBACK_ACE_TYPE) {
		snprintf(why, size, "%s %s may be changed by others: its DACL "
		    "has an entry of type %u allowing %s, which the daemon "
		    "does not judge: remove it (icacls \"%s\")", what, path,
		    (unsigned)ace->AceType, names, path);
		return;
	}
	sid_name(sid, who, sizeof(who));
	snprintf(why, size, "%s %s may be changed by others: its DACL allows "
	    "%s %s%s; only the system, the administrators and the daemon's "
	    "user %s may have such rights there: remove the entry (icacls "
	    "\"%s\" /inheritance:d, then icacls \"%s\" /remove:g *%.*s) and "
	    "look at what it holds, or give --state elsewhere", what, path,
	    who, names, (ace->AceFlags & INHERIT_ONLY_ACE) ? " (on what is "
	    "made in it)" : "", self, path, path, (int)strcspn(who, " "), who);
}

/* lbd_private_judge: see private_win32.h. */
int
lbd_private_judge(const char *what, const char *path, int kind,
    PSECURITY_DESCRIPTOR sd, PSID self, char *why, size_t size)
{
	ACL_SIZE_INFORMATION info;
	ACE_HEADER          *ace = NULL;
	PSID                 owner = NULL, sid = NULL;
	PACL                 dacl = NULL;
	BOOL                 present = FALSE, defaulted = FALSE;
	DWORD                i, rights = 0, mask;
	const char          *inherit = kind == LBD_PRIVATE_DIR ? "(OI)(CI)" :
	    "";
	char                 self_s[SECURITY_MAX_SID_SIZE * 4 + 300];
	char                 names[256];
	int                  r = -1;

	for (i = 0; i < sizeof(changing) / sizeof(changing[0]); i++)
		rights |= changing[i].mask;
	snprintf(self_s, sizeof(self_s), "?");
	if (self != NULL)
		sid_name(self, self_s, sizeof(self_s));
	if (!GetSecurityDescriptorOwner(sd, &owner, &defaulted) ||
	    !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) ||
	    (present && dacl != NULL && !GetAclInformation(dacl, &info,
	    sizeof(info), AclSizeInformation))) {
		snprintf(why, size, "%s %s: its security descriptor cannot be "
		    "read (error %lu)", what, path,
		    (unsigned long)GetLastError());
		goto out;
	}
	if (owner == NULL || !trusted(owner, self)) {
		owner_refused(what, path, owner, self_s, why, size);
		goto out;
	}
	if (!present || dacl == NULL) {
		snprintf(why, size, "%s %s may be changed by anyone: it has no "
		    "DACL (a NULL DACL allows everyone everything): give it "
		    "one (icacls \"%s\" /inheritance:r /grant:r "
		    "*S-1-5-18:%sF *S-1-5-32-544:%sF) and look at what it "
		    "holds", what, path, path, inherit, inherit);
		goto out;
	}
	for (i = 0; i < info.AceCount; i++) {
		if (!GetAce(dacl, i, (void **)&ace)) {
			snprintf(why, size, "%s %s: entry %lu of its DACL "
			    "cannot be read (error %lu)", what, path,
			    (unsigned long)i, (unsigned long)GetLastError());
			goto out;
		}
		mask = ((ACCESS_ALLOWED_ACE *)ace)->Mask;
		if (ace->AceType == ACCESS_DENIED_ACE_TYPE ||
		    ace->AceType == ACCESS_DENIED_OBJECT_ACE_TYPE ||
		    ace->AceType == ACCESS_DENIED_CALLBACK_ACE_TYPE ||
		    (mask & rights) == 0)
			continue;
		if (ace->AceType == ACCESS_ALLOWED_ACE_TYPE ||
		    ace->AceType == ACCESS_ALLOWED_CALLBACK_ACE_TYPE) {
			sid = (PSID)&((ACCESS_ALLOWED_ACE *)ace)->SidStart;
			if (!untrusted_entry(ace, sid, self))
				continue;
		}
		rights_names(mask, names, sizeof(names));
		entry_refused(what, path, ace, sid, names, self_s, why, size);
		goto out;
	}
	r = 0;
out:
	return r;
}
