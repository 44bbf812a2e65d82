/*
 * fs_win32.c: lockfs's file-system steps (fs.h) on Windows, through the
 * native API (ntdll's NtCreateFile and NtSetInformationFile), which says
 * for each open whether a link at the name is followed, and takes a name
 * relative to an open directory.  Paths are UTF-8, turned into UTF-16.
 *
 * Descriptors are C runtime descriptors of handles (_open_osfhandle):
 * lockfs_fs_close closes both, _get_osfhandle gives the handle back.
 *
 * Opens.  Every open asks FILE_OPEN_REPARSE_POINT unless LOCKFS_FS_FOLLOW
 * (a symbolic link or a junction at the name is opened itself, never
 * followed); directories open as files do (NtCreateFile needs no
 * FILE_OPEN_FOR_BACKUP_INTENT for them, which would let a backup
 * privilege, where enabled, pass over the file's ACL); every open shares reading, writing and deleting (FILE_SHARE_*),
 * so that a descriptor lockfs holds never stops another process's step on
 * the name, as on POSIX.  An open only to name the file (neither _READ nor
 * _WRITE) asks FILE_READ_ATTRIBUTES alone, which the right to list the
 * directory grants (Linux's O_PATH needs none).
 *
 * Directory-relative steps.  A descriptor of a directory is a handle, and
 * a step at it passes that handle as NtCreateFile's RootDirectory: the
 * name is looked up in that very directory, wherever it has been renamed
 * since and whatever has been put at its old path (what openat gives on
 * Linux).  What Windows does not guarantee: that the directory still has
 * a name (a directory is removed only once empty, but it may have been
 * renamed, so a step at it acts where the directory now is; the same on
 * Linux); and a name given as `at` + name must be one component (a '/' in
 * it is taken as a separator, and the components before the last are
 * looked up, not followed only at the last).  LOCKFS_FS_CWD takes the
 * name as a Win32 path (RtlDosPathNameToNtPathName_U_WithStatus: drive
 * letters, '/' or '\', relative to the working directory), whose every
 * component but the last may be a link that is followed.
 *
 * What a file is (lockfs_fs_info): its volume's serial number and its
 * file id are its identity (dev, ino: FileIdInformation, whose low 64
 * bits are NTFS's whole file index; unique on a volume while the file
 * exists; wine gives serial 0 and the inode number); its link count is
 * FileStandardInformation's (1 for a directory: "not counted so",
 * fs.h); its type is a directory, a symbolic link (a name-surrogate
 * reparse point: symbolic link or junction, opened itself), a file, or
 * another (not on a disk: a device, a pipe).
 *
 * Owners.  Windows has no numeric users: a file's owner is a SID, not a
 * uid.  A file is said to be of uid 0, the uid os_win32.c says every
 * process makes files with (lockfs_os_files_uid), when its owner is the
 * acting token's user or owner (the thread's token when it acts as a
 * client, else the process's: owner_uid), and of LOCKFS_WIN_OTHER_UID
 * when it is another's, or when its owner may not be read (a file's
 * owner may always read it): so lockfs's "a file of the owner's uid"
 * checks keep out another user's file planted at a predictable name, as
 * on Linux.  Where a file system keeps no owners (FAT), every file is
 * of uid 0 (nothing to tell).  Every open asks READ_CONTROL as well,
 * and again without it where that is denied.
 * Modes are not kept either (a file is made writable, as 0644 would be).
 *
 * Removal.  A file or directory is removed by opening its name (not
 * followed) for DELETE and setting its disposition: first with POSIX
 * semantics (FileDispositionInformationEx: the name goes at once, even
 * while another handle is open on it; Windows 10 1709 and later on NTFS),
 * else Windows' classic semantics (FileDispositionInformation: the name
 * goes when the last handle on the file is closed, and until then opens
 * of it fail with STATUS_DELETE_PENDING, which is read here as "nothing
 * there", ENOENT).  Wine 8.0 has only the classic semantics, and lets
 * the name be opened until it goes.  A directory that is not empty is
 * refused (ENOTEMPTY).  Wine 8.0 drops (silently) the removal of a name
 * relative to a directory that was renamed after its handle was opened:
 * that is looked for and told (EBUSY, remove_at).
 *
 * Hard links: CreateHardLinkW, which links a symbolic link at from itself
 * (Windows opens the existing name as a reparse point).  No file is made
 * whole (lockfs_fs_make_at makes it empty, FILE_CREATE: never reusing or
 * following what is at the name).  lockfs_fs_may_remove_in opens the
 * directory for adding files and subdirectories, as the caller's token
 * (the ACL's answer; FILE_DELETE_CHILD, or DELETE on each child, is not
 * asked: the child's own ACL may grant it).
 */
#include <windows.h>
#include <winternl.h>
#include <aclapi.h>

#include <errno.h>
#include <io.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "sid_win32.h"

/* The uid of a file whose owner is not the acting token's (owner_uid). */
#define LOCKFS_WIN_OTHER_UID ((uid_t)1)

/* The native calls mingw-w64's winternl.h leaves out. */
NTSYSAPI NTSTATUS NTAPI RtlDosPathNameToNtPathName_U_WithStatus(
    PCWSTR dos, PUNICODE_STRING nt, PWSTR *part, PVOID relative);
NTSYSAPI VOID NTAPI RtlFreeUnicodeString(PUNICODE_STRING s);

/* The NTSTATUS values these steps tell apart (ntstatus.h's). */
#define ST_NAME_INVALID        ((NTSTATUS)0xC0000033L)
#define ST_NAME_NOT_FOUND      ((NTSTATUS)0xC0000034L)
#define ST_NAME_COLLISION      ((NTSTATUS)0xC0000035L)
#define ST_PATH_NOT_FOUND      ((NTSTATUS)0xC000003AL)
#define ST_PATH_SYNTAX_BAD     ((NTSTATUS)0xC000003BL)
#define ST_ACCESS_DENIED       ((NTSTATUS)0xC0000022L)
#define ST_SHARING_VIOLATION   ((NTSTATUS)0xC0000043L)
#define ST_DELETE_PENDING      ((NTSTATUS)0xC0000056L)
#define ST_DISK_FULL           ((NTSTATUS)0xC000007FL)
#define ST_NO_MEMORY           ((NTSTATUS)0xC0000017L)
#define ST_NO_RESOURCES        ((NTSTATUS)0xC000009AL)
#define ST_WRITE_PROTECTED     ((NTSTATUS)0xC00000A2L)
#define ST_IS_A_DIRECTORY      ((NTSTATUS)0xC00000BAL)
#define ST_NOT_SUPPORTED       ((NTSTATUS)0xC00000BBL)
#define ST_INVALID_INFO_CLASS  ((NTSTATUS)0xC0000003L)
#define ST_NOT_IMPLEMENTED     ((NTSTATUS)0xC0000002L)
#define ST_INVALID_PARAMETER   ((NTSTATUS)0xC000000DL)
#define ST_INVALID_DEVICE_REQ  ((NTSTATUS)0xC0000010L)
#define ST_NOT_SAME_DEVICE     ((NTSTATUS)0xC00000D4L)
#define ST_DIR_NOT_EMPTY       ((NTSTATUS)0xC0000101L)
#define ST_NOT_A_DIRECTORY     ((NTSTATUS)0xC0000103L)
#define ST_NAME_TOO_LONG       ((NTSTATUS)0xC0000106L)
#define ST_CANNOT_DELETE       ((NTSTATUS)0xC0000121L)
#define ST_TOO_MANY_LINKS      ((NTSTATUS)0xC0000265L)
#define ST_STOPPED_ON_SYMLINK  ((NTSTATUS)0x8000002DL)

/* NtCreateFile's dispositions and options (ntifs.h's), which winternl.h
 * leaves out in part. */
#define DISP_OPEN              1        /* FILE_OPEN */
#define DISP_CREATE            2        /* FILE_CREATE */
#define DISP_OPEN_IF           3        /* FILE_OPEN_IF */
#define OPT_DIRECTORY          0x00000001
#define OPT_SYNCHRONOUS        0x00000020
#define OPT_NON_DIRECTORY      0x00000040
#define OPT_REPARSE_POINT      0x00200000

/* FileDispositionInformationEx (64) and its flags. */
#define INFO_DISPOSITION       13
#define INFO_DISPOSITION_EX    64
#define DISPOSITION_DELETE     0x1
#define DISPOSITION_POSIX      0x2

/* The longest path these steps take, in UTF-16 units (with its NUL). */
#define WIDE_MAX 4096

/* errno for the NTSTATUS st of a failed step. */
static int
errno_of_status(NTSTATUS st)
{
	switch (st) {
	case ST_NAME_NOT_FOUND:
	case ST_PATH_NOT_FOUND:
	case ST_DELETE_PENDING:         /* going: as if gone already */
		return ENOENT;
	case ST_NAME_INVALID:
	case ST_PATH_SYNTAX_BAD:
	case ST_INVALID_PARAMETER:
		return EINVAL;
	case ST_NAME_COLLISION:
		return EEXIST;
	case ST_NOT_A_DIRECTORY:
		return ENOTDIR;
	case ST_IS_A_DIRECTORY:
		return EISDIR;
	case ST_DIR_NOT_EMPTY:
		return ENOTEMPTY;
	case ST_ACCESS_DENIED:
	case ST_CANNOT_DELETE:          /* a read-only file */
		return EACCES;
	case ST_SHARING_VIOLATION:
		return EBUSY;
	case ST_NAME_TOO_LONG:
		return ENAMETOOLONG;
	case ST_NO_MEMORY:
	case ST_NO_RESOURCES:
		return ENOMEM;
	case ST_DISK_FULL:
		return ENOSPC;
	case ST_WRITE_PROTECTED:
		return EROFS;
	case ST_NOT_SAME_DEVICE:
		return EXDEV;
	case ST_TOO_MANY_LINKS:
		return EMLINK;
	case ST_STOPPED_ON_SYMLINK:
		return ELOOP;
	case ST_NOT_SUPPORTED:
	case ST_INVALID_DEVICE_REQ:
		return EPERM;
	default:
		return EIO;
	}
}

/* errno for the Win32 error err of a failed step (CreateHardLinkW). */
static int
errno_of_error(DWORD err)
{
	switch (err) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
		return ENOENT;
	case ERROR_ALREADY_EXISTS:
	case ERROR_FILE_EXISTS:
		return EEXIST;
	case ERROR_ACCESS_DENIED:
		return EACCES;
	case ERROR_SHARING_VIOLATION:
		return EBUSY;
	case ERROR_NOT_SAME_DEVICE:
		return EXDEV;
	case ERROR_TOO_MANY_LINKS:
		return EMLINK;
	case ERROR_INVALID_FUNCTION:    /* no hard links here (FAT) */
	case ERROR_NOT_SUPPORTED:
		return EPERM;
	case ERROR_DISK_FULL:
		return ENOSPC;
	case ERROR_WRITE_PROTECT:
		return EROFS;
	case ERROR_INVALID_NAME:
		return EINVAL;
	case ERROR_FILENAME_EXCED_RANGE:
		return ENAMETOOLONG;
	default:
		return EIO;
	}
}

/* The UTF-16 form of UTF-8 s into out (WIDE_MAX units): 0, or -1 with
 * errno (ENAMETOOLONG; EINVAL when s is not UTF-8). */
static int
wide(const char *s, wchar_t *out)
{
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out,
	    WIDE_MAX) == 0) {
		errno = GetLastError() == ERROR_INSUFFICIENT_BUFFER ?
		    ENAMETOOLONG : EINVAL;
		return -1;
	}
	return 0;
}

/* The handle of descriptor fd, or NULL with errno EBADF. */
static HANDLE
handle_of(int fd)
{
	intptr_t h = _get_osfhandle(fd);

	if (h == -1 || h == -2) {
		errno = EBADF;
		return NULL;
	}
	return (HANDLE)h;
}

/*
 * nt_open: opens name relative to at (LOCKFS_FS_CWD: a Win32 path) into
 * *h with access (SYNCHRONIZE added: synchronous I/O), disposition and
 * options (OPT_*; OPT_SYNCHRONOUS added), sharing everything.  0, or -1
 * with errno.
 */
static int
nt_open(int at, const char *name, ACCESS_MASK access, ULONG disposition,
    ULONG options, HANDLE *h)
{
	wchar_t           w[WIDE_MAX], *p;
	UNICODE_STRING    us;
	OBJECT_ATTRIBUTES oa;
	IO_STATUS_BLOCK   io;
	HANDLE            root = NULL;
	NTSTATUS          st;
	int               converted = 0, r = -1;

	*h = NULL;
	if (wide(name, w) == -1)
		goto out;
	if (at == LOCKFS_FS_CWD) {
		if ((st = RtlDosPathNameToNtPathName_U_WithStatus(w, &us, NULL,
		    NULL)) != 0) {
			errno = errno_of_status(st);
			goto out;
		}
		converted = 1;
	} else {
		if ((root = handle_of(at)) == NULL)
			goto out;
		if (w[0] == L'\0' || w[0] == L'/' || w[0] == L'\\') {
			errno = w[0] == L'\0' ? ENOENT : EINVAL;
			goto out;
		}
		for (p = w; *p != L'\0'; p++)
			if (*p == L'/')
				*p = L'\\';
		us.Buffer = w;
		us.Length = (USHORT)(wcslen(w) * sizeof(wchar_t));
		us.MaximumLength = us.Length;
	}
	InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
	st = NtCreateFile(h, access | READ_CONTROL | SYNCHRONIZE, &oa, &io,
	    NULL, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ | FILE_SHARE_WRITE |
	    FILE_SHARE_DELETE, disposition, options | OPT_SYNCHRONOUS, NULL,
	    0);
	if (st == ST_ACCESS_DENIED)     /* its owner unread: owner_uid */
		st = NtCreateFile(h, access | SYNCHRONIZE, &oa, &io, NULL,
		    FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ | FILE_SHARE_WRITE |
		    FILE_SHARE_DELETE, disposition, options | OPT_SYNCHRONOUS,
		    NULL, 0);
	if (st != 0) {
		*h = NULL;
		errno = errno_of_status(st);
		goto out;
	}
	r = 0;
out:
	if (converted)
		RtlFreeUnicodeString(&us);
	return r;
}

/* What info_of asks NtQueryInformationFile and
 * NtQueryVolumeInformationFile (ntifs.h's structures and classes). */
#define INFO_BASIC             4
#define INFO_STANDARD          5
#define INFO_INTERNAL          6
#define INFO_ATTRIBUTE_TAG     35
#define INFO_ID                59
#define FS_INFO_VOLUME         1
struct info_basic {
	LARGE_INTEGER created, accessed, written, changed;
	ULONG         attributes;
};
struct info_standard {
	LARGE_INTEGER allocated, size;
	ULONG         links;
	BOOLEAN       delete_pending, directory;
};
struct info_tag {
	ULONG attributes, tag;
};
struct info_id {
	ULONGLONG serial;
	BYTE      id[16];
};
struct fs_info_volume {
	LARGE_INTEGER created;
	ULONG         serial, label_length;
	BOOLEAN       objects;
	WCHAR         label[1];
};

/*
 * The identity of the file open as h into *fi (dev, ino): its volume's
 * serial number and its file id (FileIdInformation: Windows 8 and later;
 * the id's low 64 bits, the whole of NTFS's file index), else (before
 * Windows 8) its volume's serial number and its file index, as
 * GetFileInformationByHandle gives them.  Not GetFileInformationByHandle
 * itself: wine 8.0 fails it (and the volume's information) for a file
 * opened relative to a directory that was renamed since, since it asks
 * the file's name, where FileIdInformation does not (wine gives serial
 * 0 and the inode number).  0, or -1 with errno.
 */
static int
identity_of(HANDLE h, struct lockfs_fs_info *fi)
{
	struct fs_info_volume volume;
	struct info_id        id;
	LARGE_INTEGER         index;
	IO_STATUS_BLOCK       io;
	NTSTATUS              st;

	st = NtQueryInformationFile(h, &io, &id, sizeof(id),
	    (FILE_INFORMATION_CLASS)INFO_ID);
	if (st == 0) {
		fi->dev = id.serial;
		memcpy(&fi->ino, id.id, sizeof(fi->ino));  /* little-endian */
		return 0;
	}
	if (st == ST_INVALID_INFO_CLASS || st == ST_NOT_IMPLEMENTED ||
	    st == ST_INVALID_PARAMETER || st == ST_NOT_SUPPORTED) {
		st = NtQueryInformationFile(h, &io, &index, sizeof(index),
		    (FILE_INFORMATION_CLASS)INFO_INTERNAL);
		if (st == 0 && ((st = NtQueryVolumeInformationFile(h, &io,
		    &volume, sizeof(volume),
		    (FS_INFORMATION_CLASS)FS_INFO_VOLUME)) == 0 ||
		    st == (NTSTATUS)0x80000005L)) {     /* label cut */
			fi->dev = volume.serial;
			fi->ino = (unsigned long long)index.QuadPart;
			return 0;
		}
	}
	errno = errno_of_status(st);
	return -1;
}

/* The Windows time t (100 ns since 1601) as fs.h's (since 1970). */
static void
time_of(const LARGE_INTEGER *t, struct lockfs_fs_time *out)
{
	long long since = t->QuadPart - 116444736000000000LL;
	long long sec = since / 10000000, rest = since % 10000000;

	if (rest < 0) {
		rest += 10000000;
		sec--;
	}
	out->sec = sec;
	out->nsec = (long)(rest * 100);
}

/* lockfs_sid_is_acting: see sid_win32.h. */
int
lockfs_sid_is_acting(PSID sid)
{
	HANDLE t;
	BYTE   user[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
	BYTE   owner[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_OWNER)];
	DWORD  n;
	int    r = -1;

	if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &t) &&
	    (GetLastError() != ERROR_NO_TOKEN ||
	    !OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &t)))
		return -1;
	if (GetTokenInformation(t, TokenUser, user, sizeof(user), &n) &&
	    GetTokenInformation(t, TokenOwner, owner, sizeof(owner), &n))
		r = EqualSid(sid, ((TOKEN_USER *)user)->User.Sid) ||
		    EqualSid(sid, ((TOKEN_OWNER *)owner)->Owner);
	CloseHandle(t);
	return r;
}

/* lockfs_sid_is_trusted: see sid_win32.h. */
int
lockfs_sid_is_trusted(PSID sid)
{
	return IsWellKnownSid(sid, WinLocalSystemSid) ||
	    IsWellKnownSid(sid, WinBuiltinAdministratorsSid) ||
	    lockfs_sid_is_acting(sid) == 1;
}

/* The uid of the file open as h (see the top): 0 when its owner is the
 * acting token's or cannot be told (no owners on its file system, or
 * the token unread), LOCKFS_WIN_OTHER_UID when it is another's or may
 * not be read. */
static uid_t
owner_uid(HANDLE h)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL;
	DWORD                err;
	uid_t                uid = 0;

	err = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION,
	    &owner, NULL, NULL, NULL, &sd);
	if (err == ERROR_ACCESS_DENIED)
		uid = LOCKFS_WIN_OTHER_UID;
	else if (err == ERROR_SUCCESS && owner != NULL &&
	    lockfs_sid_is_acting(owner) == 0)
		uid = LOCKFS_WIN_OTHER_UID;
	if (sd != NULL)
		LocalFree(sd);
	return uid;
}

/* The file open as h, into *fi: its identity (identity_of), its link
 * count, its type from its attributes and reparse tag.  0, or -1 with
 * errno. */
static int
info_of(HANDLE h, struct lockfs_fs_info *fi)
{
	struct info_basic    basic;
	struct info_standard standard;
	struct info_tag      tag;
	IO_STATUS_BLOCK      io;
	NTSTATUS             st;

	if (identity_of(h, fi) == -1)
		return -1;
	if ((st = NtQueryInformationFile(h, &io, &standard, sizeof(standard),
	    (FILE_INFORMATION_CLASS)INFO_STANDARD)) != 0 ||
	    (st = NtQueryInformationFile(h, &io, &basic, sizeof(basic),
	    (FILE_INFORMATION_CLASS)INFO_BASIC)) != 0) {
		errno = errno_of_status(st);
		return -1;
	}
	fi->uid = owner_uid(h);         /* see the top */
	fi->nlink = standard.links;
	fi->size = (unsigned long long)standard.size.QuadPart;
	fi->perm = 0;                   /* no permission bits: ACLs */
	time_of(&basic.written, &fi->mtime);
	time_of(&basic.changed, &fi->ctime);
	if (GetFileType(h) != FILE_TYPE_DISK)
		fi->type = LOCKFS_FS_OTHER;
	else if ((basic.attributes & FILE_ATTRIBUTE_REPARSE_POINT) &&
	    NtQueryInformationFile(h, &io, &tag, sizeof(tag),
	    (FILE_INFORMATION_CLASS)INFO_ATTRIBUTE_TAG) == 0 &&
	    IsReparseTagNameSurrogate(tag.tag))
		fi->type = LOCKFS_FS_SYMLINK;   /* a symbolic link, a junction */
	else if (basic.attributes & FILE_ATTRIBUTE_DIRECTORY)
		fi->type = LOCKFS_FS_DIRECTORY;
	else
		fi->type = LOCKFS_FS_FILE;
	return 0;
}

/* lockfs_fs_open: see fs.h.  One NtCreateFile, and a look at what it
 * opened for the types fs.h refuses (a link not followed: ENOTDIR with
 * LOCKFS_FS_DIR, ELOOP when opened to read or write). */
int
lockfs_fs_open(int at, const char *name, int how)
{
	struct lockfs_fs_info fi;
	ACCESS_MASK           access = FILE_READ_ATTRIBUTES;
	ULONG                 disposition = DISP_OPEN, options = 0;
	HANDLE                h;
	int                   fd = -1;

	if (how & LOCKFS_FS_WRITE)
		access |= FILE_WRITE_DATA | FILE_APPEND_DATA |
		    FILE_WRITE_ATTRIBUTES;
	else if (how & LOCKFS_FS_READ)
		access |= how & LOCKFS_FS_DIR ? FILE_LIST_DIRECTORY |
		    FILE_TRAVERSE : FILE_READ_DATA;
	if (how & LOCKFS_FS_CREATE)
		disposition = how & LOCKFS_FS_EXCL ? DISP_CREATE : DISP_OPEN_IF;
	if (!(how & LOCKFS_FS_FOLLOW))
		options |= OPT_REPARSE_POINT;
	if (how & LOCKFS_FS_WRITE)
		options |= OPT_NON_DIRECTORY;   /* EISDIR, as O_WRONLY */
	if (nt_open(at, name, access, disposition, options, &h) == -1)
		return -1;
	if (info_of(h, &fi) == -1)
		goto fail;
	if ((how & LOCKFS_FS_DIR) && fi.type != LOCKFS_FS_DIRECTORY) {
		errno = ENOTDIR;
		goto fail;
	}
	if (fi.type == LOCKFS_FS_SYMLINK && (how & (LOCKFS_FS_READ |
	    LOCKFS_FS_WRITE))) {
		errno = ELOOP;
		goto fail;
	}
	if ((fd = _open_osfhandle((intptr_t)h, 0)) == -1) {
		errno = EMFILE;
		goto fail;
	}
	return fd;
fail:
	CloseHandle(h);
	return -1;
}

/* lockfs_fs_close: see fs.h.  The descriptor and its handle. */
void
lockfs_fs_close(int fd)
{
	int saved = errno;

	if (fd != -1)
		_close(fd);
	errno = saved;
}

/* lockfs_fs_info: see fs.h. */
int
lockfs_fs_info(int fd, struct lockfs_fs_info *fi)
{
	HANDLE h;

	if ((h = handle_of(fd)) == NULL)
		return -1;
	return info_of(h, fi);
}

/* lockfs_fs_info_at: see fs.h.  An open only to name it, a look, a
 * close. */
int
lockfs_fs_info_at(int at, const char *name, int how,
    struct lockfs_fs_info *fi)
{
	HANDLE h;
	int    r;

	if (nt_open(at, name, FILE_READ_ATTRIBUTES, DISP_OPEN,
	    how & LOCKFS_FS_FOLLOW ? 0 : OPT_REPARSE_POINT, &h) == -1)
		return -1;
	r = info_of(h, fi);
	CloseHandle(h);
	return r;
}

/* lockfs_fs_make_at: see fs.h.  FILE_CREATE: made only when nothing is
 * at the name (EEXIST), which is neither followed nor reused; mode is
 * not kept (see the top). */
int
lockfs_fs_make_at(int at, const char *name, mode_t mode)
{
	HANDLE h;

	(void)mode;
	if (nt_open(at, name, FILE_READ_ATTRIBUTES, DISP_CREATE,
	    OPT_NON_DIRECTORY | OPT_REPARSE_POINT, &h) == -1)
		return -1;
	CloseHandle(h);
	return 0;
}

/* lockfs_fs_link: see fs.h.  CreateHardLinkW (ERROR_ALREADY_EXISTS when
 * to exists; a file system without hard links, FAT: EPERM). */
int
lockfs_fs_link(const char *from, const char *to)
{
	wchar_t f[WIDE_MAX], t[WIDE_MAX];

	if (wide(from, f) == -1 || wide(to, t) == -1)
		return -1;
	if (!CreateHardLinkW(t, f, NULL)) {
		errno = errno_of_error(GetLastError());
		return -1;
	}
	return 0;
}

/* Whether the directory open as root is still at the path its handle
 * tells (GetFinalPathNameByHandleW): 1, or 0 when another file or
 * nothing is there (wine 8.0 tells the path it was opened by, also after
 * it was renamed). */
static int
still_named(HANDLE root)
{
	struct lockfs_fs_info was, is;
	wchar_t               w[WIDE_MAX];
	HANDLE                h;
	DWORD                 n;
	int                   r;

	n = GetFinalPathNameByHandleW(root, w, WIDE_MAX, FILE_NAME_NORMALIZED);
	if (n == 0 || n >= WIDE_MAX || identity_of(root, &was) == -1)
		return 0;
	h = CreateFileW(w, FILE_READ_ATTRIBUTES, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
	    FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 0;
	r = identity_of(h, &is) == 0 && is.dev == was.dev &&
	    is.ino == was.ino;
	CloseHandle(h);
	return r;
}

/*
 * Removes name (relative to at, not followed): a directory when dir, else
 * anything but a directory (EISDIR), by its disposition: POSIX semantics
 * where the file system has them, else Windows' (see the top).
 *
 * Relative to a directory, the name is looked at once more after: gone,
 * or going (Windows' classic semantics: STATUS_DELETE_PENDING), it is
 * removed.  The same file still there is either going when another
 * handle on it closes (wine keeps the classic semantics, and lets the
 * name be opened meanwhile) or never going: wine 8.0 drops the removal
 * of a file opened relative to a directory that was renamed since (it
 * removes by the file's old path, and only when that is still the
 * file), which is told (EBUSY), not taken for done: the directory no
 * longer at the path its handle tells is that case.  0, or -1 with
 * errno.
 */
static int
remove_at(int at, const char *name, int dir)
{
	struct {
		ULONG flags;
	} ex = { DISPOSITION_DELETE | DISPOSITION_POSIX };
	struct {
		BOOLEAN delete_file;
	} classic = { TRUE };
	struct lockfs_fs_info before, after;
	IO_STATUS_BLOCK       io;
	HANDLE                h;
	NTSTATUS              st;
	int                   there;

	if (nt_open(at, name, DELETE, DISP_OPEN, OPT_REPARSE_POINT |
	    (dir ? OPT_DIRECTORY : OPT_NON_DIRECTORY), &h) == -1)
		return -1;
	if (at != LOCKFS_FS_CWD && identity_of(h, &before) == -1) {
		CloseHandle(h);
		return -1;
	}
	st = NtSetInformationFile(h, &io, &ex, sizeof(ex),
	    (FILE_INFORMATION_CLASS)INFO_DISPOSITION_EX);
	if (st == ST_INVALID_INFO_CLASS || st == ST_NOT_IMPLEMENTED ||
	    st == ST_INVALID_PARAMETER || st == ST_NOT_SUPPORTED)
		st = NtSetInformationFile(h, &io, &classic, sizeof(classic),
		    (FILE_INFORMATION_CLASS)INFO_DISPOSITION);
	CloseHandle(h);
	if (st != 0) {
		errno = errno_of_status(st);
		return -1;
	}
	if (at != LOCKFS_FS_CWD && nt_open(at, name, FILE_READ_ATTRIBUTES,
	    DISP_OPEN, OPT_REPARSE_POINT, &h) == 0) {
		there = identity_of(h, &after) == 0 &&
		    after.dev == before.dev && after.ino == before.ino;
		CloseHandle(h);
		if (there && !still_named(handle_of(at))) {
			errno = EBUSY;  /* stays: not removed */
			return -1;
		}
	}
	return 0;
}

/* lockfs_fs_unlink: see fs.h. */
int
lockfs_fs_unlink(const char *path)
{
	return remove_at(LOCKFS_FS_CWD, path, 0);
}

/* lockfs_fs_mkdir: see fs.h.  FILE_CREATE of a directory (no modes). */
int
lockfs_fs_mkdir(const char *path)
{
	HANDLE h;

	if (nt_open(LOCKFS_FS_CWD, path, FILE_READ_ATTRIBUTES, DISP_CREATE,
	    OPT_DIRECTORY | OPT_REPARSE_POINT, &h) == -1)
		return -1;
	CloseHandle(h);
	return 0;
}

/* lockfs_fs_rmdir: see fs.h. */
int
lockfs_fs_rmdir(const char *path)
{
	return remove_at(LOCKFS_FS_CWD, path, 1);
}

/* lockfs_fs_unlink_at: see fs.h. */
int
lockfs_fs_unlink_at(int at, const char *name)
{
	return remove_at(at, name, 0);
}

/* lockfs_fs_rmdir_at: see fs.h. */
int
lockfs_fs_rmdir_at(int at, const char *name)
{
	return remove_at(at, name, 1);
}

/* lockfs_fs_may_remove_in: see fs.h.  An open of dir (followed) for
 * adding files and subdirectories, as the calling thread's token. */
int
lockfs_fs_may_remove_in(const char *dir)
{
	HANDLE h;

	if (nt_open(LOCKFS_FS_CWD, dir, FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY,
	    DISP_OPEN, OPT_DIRECTORY, &h) == -1)
		return -1;
	CloseHandle(h);
	return 0;
}

/*
 * Reading, writing, renaming, symbolic links and directory streams (the
 * rest of fs.h): reading and writing through the C runtime's descriptor,
 * no reopening (ENOENT: the caller opens the name again and checks it),
 * directory streams through GetFileInformationByHandleEx; renames that
 * replace through NtSetInformationFile; symbolic links not yet
 * (ENOSYS).
 */

/* lockfs_fs_reopen: see fs.h.  Not offered: ENOENT. */
int
lockfs_fs_reopen(int fd, int how)
{
	(void)fd;
	(void)how;
	errno = ENOENT;
	return -1;
}

/* lockfs_fs_read: see fs.h.  _read, at most INT_MAX bytes. */
ssize_t
lockfs_fs_read(int fd, void *buf, size_t size)
{
	return _read(fd, buf, size > INT_MAX ? INT_MAX : (unsigned)size);
}

/* lockfs_fs_write: see fs.h.  _write, at most INT_MAX bytes. */
ssize_t
lockfs_fs_write(int fd, const void *buf, size_t size)
{
	return _write(fd, buf, size > INT_MAX ? INT_MAX : (unsigned)size);
}

/* lockfs_fs_close_written: see fs.h.  What is written is the system's
 * once written (no file system here reports a write at the close). */
int
lockfs_fs_close_written(int fd)
{
	return _close(fd);
}

/* What NtSetInformationFile's renames take (ntifs.h's
 * FILE_RENAME_INFORMATION; the Ex class has flags where the older one
 * has a BOOLEAN). */
#define INFO_RENAME            10
#define INFO_RENAME_EX         65
#define RENAME_REPLACE         0x1
#define RENAME_POSIX           0x2
struct info_rename {             /* given whole: not less than */
	union {                         /* the system's own structure */
		BOOLEAN replace;
		ULONG   flags;
	} u;
	HANDLE root;
	ULONG  length;
	WCHAR  name[WIDE_MAX];
};

/*
 * lockfs_fs_rename_at: see fs.h.  from is opened (not followed) for
 * DELETE and given its new name with NtSetInformationFile, to relative
 * to at's handle (RootDirectory) as every step at a directory is, or, at
 * LOCKFS_FS_CWD, a Win32 path: first with POSIX semantics
 * (FileRenameInformationEx, REPLACE_IF_EXISTS | POSIX_SEMANTICS: Windows
 * 10 1709 and later on NTFS; the name to is replaced at once even while
 * another handle has the file there open), else Windows' classic one
 * (FileRenameInformation, ReplaceIfExists: at once too, but refused
 * while any handle is open on the file at to; wine 8.0 has only this
 * one).  That refusal (STATUS_ACCESS_DENIED, as for a file one may not
 * replace) is told apart by opening to for DELETE: when that succeeds,
 * or fails for sharing, another handle is in the way, EBUSY (try again:
 * a reader holds it for a few calls); else EACCES.
 */
int
lockfs_fs_rename_at(int at, const char *from, const char *to)
{
	struct info_rename *ri;
	UNICODE_STRING      us;
	IO_STATUS_BLOCK     io;
	HANDLE              h = NULL, t;
	NTSTATUS            st;
	const wchar_t      *name;
	wchar_t             w[WIDE_MAX], *p;
	size_t              len;
	int                 converted = 0, r = -1, saved;

	if ((ri = calloc(1, sizeof(*ri))) == NULL) {
		errno = ENOMEM;
		goto out;
	}
	if (wide(to, w) == -1)
		goto out;
	if (at == LOCKFS_FS_CWD) {
		if ((st = RtlDosPathNameToNtPathName_U_WithStatus(w, &us, NULL,
		    NULL)) != 0) {
			errno = errno_of_status(st);
			goto out;
		}
		converted = 1;
		name = us.Buffer;
		len = us.Length / sizeof(wchar_t);
	} else {
		if ((ri->root = handle_of(at)) == NULL)
			goto out;
		if (w[0] == L'\0' || wcschr(w, L'/') != NULL ||
		    wcschr(w, L'\\') != NULL) {
			errno = w[0] == L'\0' ? ENOENT : EINVAL;
			goto out;
		}
		for (p = w; *p != L'\0'; p++)
			;
		name = w;
		len = (size_t)(p - w);
	}
	if (len >= WIDE_MAX) {
		errno = ENAMETOOLONG;
		goto out;
	}
	memcpy(ri->name, name, len * sizeof(wchar_t));
	ri->length = (ULONG)(len * sizeof(wchar_t));
	if (nt_open(at, from, DELETE, DISP_OPEN, OPT_REPARSE_POINT, &h) == -1)
		goto out;
	ri->u.flags = RENAME_REPLACE | RENAME_POSIX;
	st = NtSetInformationFile(h, &io, ri, sizeof(*ri),
	    (FILE_INFORMATION_CLASS)INFO_RENAME_EX);
	if (st == ST_INVALID_INFO_CLASS || st == ST_NOT_IMPLEMENTED ||
	    st == ST_INVALID_PARAMETER || st == ST_NOT_SUPPORTED) {
		ri->u.flags = 0;
		ri->u.replace = TRUE;
		st = NtSetInformationFile(h, &io, ri, sizeof(*ri),
		    (FILE_INFORMATION_CLASS)INFO_RENAME);
	}
	if (st == ST_ACCESS_DENIED) {
		if (nt_open(at, to, DELETE, DISP_OPEN, OPT_REPARSE_POINT,
		    &t) == 0) {
			CloseHandle(t);
			errno = EBUSY;
		} else if (errno != EBUSY)
			errno = EACCES;
		goto out;
	}
	if (st != 0) {
		errno = errno_of_status(st);
		goto out;
	}
	r = 0;
out:
	saved = errno;
	if (h != NULL)
		CloseHandle(h);
	if (converted)
		RtlFreeUnicodeString(&us);
	free(ri);
	errno = saved;
	return r;
}

/* lockfs_fs_symlink: see fs.h. */
int
lockfs_fs_symlink(const char *target, const char *path)
{
	(void)target;
	(void)path;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_readlink_at: see fs.h. */
ssize_t
lockfs_fs_readlink_at(int at, const char *name, char *buf, size_t size)
{
	(void)at;
	(void)name;
	(void)buf;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_realpath: see fs.h.  Not yet on Windows. */
int
lockfs_fs_realpath(const char *path, char *out)
{
	(void)path;
	(void)out;
	errno = ENOSYS;
	return -1;
}

/* A directory stream: the directory's descriptor and its entries as
 * GetFileInformationByHandleEx(FileIdBothDirectoryInfo) gives them. */
struct lockfs_fs_dir {
	int    fd;
	int    restart;                 /* the next read starts again */
	size_t pos, len;                /* buf's unread entries */
	char   name[768];               /* the entry given out, in UTF-8 */
	_Alignas(8) char buf[4096];
};

/* A stream of the directory open as fd, which it keeps (closes): the
 * stream, or NULL with errno (fd closed). */
static struct lockfs_fs_dir *
dir_of(int fd)
{
	struct lockfs_fs_dir *d;

	if (fd == -1)
		return NULL;
	if ((d = malloc(sizeof(*d))) == NULL) {
		lockfs_fs_close(fd);
		errno = ENOMEM;
		return NULL;
	}
	d->fd = fd;
	d->restart = 1;
	d->pos = d->len = 0;
	return d;
}

/* lockfs_fs_dir_open: see fs.h. */
struct lockfs_fs_dir *
lockfs_fs_dir_open(const char *path)
{
	return dir_of(lockfs_fs_open(LOCKFS_FS_CWD, path, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR | LOCKFS_FS_FOLLOW));
}

/* lockfs_fs_dir_open_fd: see fs.h.  A duplicate of fd's handle, read from
 * the first entry. */
struct lockfs_fs_dir *
lockfs_fs_dir_open_fd(int fd)
{
	HANDLE h = handle_of(fd), copy;
	int    cfd;

	if (h == NULL)
		return NULL;
	if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(),
	    &copy, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
		errno = errno_of_error(GetLastError());
		return NULL;
	}
	if ((cfd = _open_osfhandle((intptr_t)copy, 0)) == -1) {
		CloseHandle(copy);
		errno = EMFILE;
		return NULL;
	}
	return dir_of(cfd);
}

/* lockfs_fs_dir_next: see fs.h.  "." and ".." are given as Windows gives
 * them (not at a volume's root); the type from the entry's attributes
 * (a reparse point: DT_UNKNOWN), the file number its file id. */
int
lockfs_fs_dir_next(struct lockfs_fs_dir *d, struct lockfs_fs_entry *e)
{
	FILE_ID_BOTH_DIR_INFO *de;
	HANDLE                 h;
	DWORD                  err;
	int                    n;

	for (;;) {
		if (d->pos >= d->len) {
			if ((h = handle_of(d->fd)) == NULL)
				return 0;
			if (!GetFileInformationByHandleEx(h, d->restart ?
			    FileIdBothDirectoryRestartInfo :
			    FileIdBothDirectoryInfo, d->buf, sizeof(d->buf))) {
				err = GetLastError();
				if (err != ERROR_NO_MORE_FILES)
					errno = errno_of_error(err);
				d->restart = 0;
				return 0;
			}
			d->restart = 0;
			d->pos = 0;
			d->len = sizeof(d->buf);
		}
		de = (FILE_ID_BOTH_DIR_INFO *)(d->buf + d->pos);
		d->pos = de->NextEntryOffset == 0 ? d->len :
		    d->pos + de->NextEntryOffset;
		n = WideCharToMultiByte(CP_UTF8, 0, de->FileName,
		    (int)(de->FileNameLength / sizeof(WCHAR)), d->name,
		    sizeof(d->name) - 1, NULL, NULL);
		if (n <= 0)
			continue;       /* cannot be named in UTF-8 */
		d->name[n] = '\0';
		e->name = d->name;
		e->ino = (unsigned long long)de->FileId.QuadPart;
		e->type = de->FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT ?
		    DT_UNKNOWN : de->FileAttributes & FILE_ATTRIBUTE_DIRECTORY ?
		    DT_DIR : DT_REG;
		return 1;
	}
}

/* lockfs_fs_dir_rewind: see fs.h.  The next read restarts the
 * enumeration. */
void
lockfs_fs_dir_rewind(struct lockfs_fs_dir *d)
{
	d->restart = 1;
	d->pos = d->len = 0;
}

/* lockfs_fs_dir_fd: see fs.h. */
int
lockfs_fs_dir_fd(struct lockfs_fs_dir *d)
{
	return d->fd;
}

/* lockfs_fs_dir_close: see fs.h. */
void
lockfs_fs_dir_close(struct lockfs_fs_dir *d)
{
	int saved = errno;

	if (d != NULL) {
		lockfs_fs_close(d->fd);
		free(d);
	}
	errno = saved;
}
