/*
 * pipefloor_win32.c: the floor of a request to a daemon on Windows, a
 * plain Win32 named-pipe round trip between two processes: a message
 * written with WriteFile and read back whole with ReadFile, on a pipe
 * that another process (a copy of this program) made with
 * CreateNamedPipeW and echoes on with ReadFile and WriteFile.  Blocking
 * calls, no overlapped I/O, no event loop: nothing a request to
 * lockbrokerd.exe can do without.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_win32.h"

#define MSG_MAX 8192

/* Reads exactly len bytes from h; 0, or -1 when the other end is gone. */
static int
pipe_read_full(HANDLE h, char *buf, size_t len)
{
	DWORD n;

	while (len > 0) {
		if (!ReadFile(h, buf, (DWORD)len, &n, NULL) || n == 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Writes exactly len bytes to h; -1 when it cannot. */
static int
pipe_write_full(HANDLE h, const char *buf, size_t len)
{
	DWORD n;

	while (len > 0) {
		if (!WriteFile(h, buf, (DWORD)len, &n, NULL) || n == 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* pipefloor_echo_main: see bench_win32.h. */
int
pipefloor_echo_main(int argc, char **argv)
{
	wchar_t name[128];
	char    buf[MSG_MAX];
	HANDLE  h;
	long    size;

	if (argc != 4 || (size = atol(argv[3])) < 1 || size > MSG_MAX ||
	    MultiByteToWideChar(CP_UTF8, 0, argv[2], -1, name, 128) == 0)
		die("usage: lbbench-win --echo PIPE SIZE (1 to %d)", MSG_MAX);
	h = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX |
	    FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_TYPE_BYTE |
	    PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
	    (DWORD)size, (DWORD)size, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		die("CreateNamedPipe %s: error %lu", argv[2],
		    (unsigned long)GetLastError());
	if (!ConnectNamedPipe(h, NULL) &&
	    GetLastError() != ERROR_PIPE_CONNECTED)
		die("ConnectNamedPipe %s: error %lu", argv[2],
		    (unsigned long)GetLastError());
	while (pipe_read_full(h, buf, (size_t)size) == 0)
		if (pipe_write_full(h, buf, (size_t)size) == -1)
			die("echo on %s: WriteFile: error %lu", argv[2],
			    (unsigned long)GetLastError());
	CloseHandle(h);
	return 0;
}

/* pipefloor_open: see bench_win32.h. */
void
pipefloor_open(struct pipefloor *f, size_t size)
{
	char     name[128], args[256];
	uint64_t until = now_ns() + 60000000000ull;

	if (size < 1 || size > MSG_MAX)
		die("floor: a message of %zu bytes (1 to %d)", size, MSG_MAX);
	f->size = size;
	snprintf(name, sizeof(name), "\\\\.\\pipe\\lbbench-echo-%lu",
	    (unsigned long)GetCurrentProcessId());
	MultiByteToWideChar(CP_UTF8, 0, name, -1, f->name, 128);
	snprintf(args, sizeof(args), "--echo %s %zu", name, size);
	f->proc = proc_self(args);
	/* Until the echoing process has made its pipe. */
	while ((f->pipe = CreateFileW(f->name, GENERIC_READ | GENERIC_WRITE,
	    0, NULL, OPEN_EXISTING, 0, NULL)) == INVALID_HANDLE_VALUE) {
		if (WaitForSingleObject(f->proc, 0) != WAIT_TIMEOUT)
			die("floor: the echoing process ended before it "
			    "served %s", name);
		if (now_ns() > until)
			die("floor: %s: error %lu after a minute", name,
			    (unsigned long)GetLastError());
		Sleep(10);
	}
}

/* pipefloor_series: see bench_win32.h. */
void
pipefloor_series(struct pipefloor *f, int rep, int samples, int warmup)
{
	struct samples s;
	char           msg[MSG_MAX];
	uint64_t       t0;
	int            i;

	memset(msg, 'x', f->size);
	msg[f->size - 1] = '\n';
	samples_init(&s, (size_t)samples);
	for (i = -warmup; i < samples; i++) {
		t0 = now_ns();
		if (pipe_write_full(f->pipe, msg, f->size) == -1 ||
		    pipe_read_full(f->pipe, msg, f->size) == -1)
			die("floor: the echoing process is gone (error %lu)",
			    (unsigned long)GetLastError());
		if (i >= 0)
			samples_add(&s, now_ns() - t0);
	}
	report_latency("floor.pipe_rtt", rep, &s);
	samples_free(&s);
}

/* pipefloor_close: see bench_win32.h. */
void
pipefloor_close(struct pipefloor *f)
{
	CloseHandle(f->pipe);
	f->pipe = INVALID_HANDLE_VALUE;
	proc_wait(f->proc, "the floor's echoing process");
}
