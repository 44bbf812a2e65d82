/*
 * service_win32.c: service.h on Windows: lockbrokerd.exe --service under
 * the service control manager (SCM).
 *
 * The process's main thread gives itself to the SCM
 * (StartServiceCtrlDispatcherW), which runs the service's main in a
 * thread of its own; there the daemon's life runs (main.c's daemon_run,
 * the same as in a console), and the control handler, called in the main
 * thread, reaches the loop through an async handle (uv_async_send, the
 * one libuv call safe from another thread).  What the SCM is told:
 *
 *   START_PENDING (the dispatcher called the service's main)
 *      | listening (lbd_service_ready)           | could not start
 *      v                                         |
 *   RUNNING, taking STOP and SHUTDOWN            |
 *      | STOP or SHUTDOWN: the loop's stop       |
 *      v    (on_stop, as SIGTERM does on Linux)  |
 *   STOP_PENDING                                 |
 *      | the daemon's life returned              |
 *      v                                         v
 *   STOPPED, its exit code the status (0: NO_ERROR; otherwise
 *      ERROR_SERVICE_SPECIFIC_ERROR with the status as the service's own
 *      code, which "sc query" shows)
 *
 * The service runs as the account the SCM names for it (sc.exe create
 * obj=; LocalSystem by default).
 */
#include <winsock2.h>
#include <windows.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "service.h"

/* How long the SCM is told a start (reconciling the previous run's holds)
 * and a stop (clients given their last replies) may take (ms). */
#define SERVICE_START_WAIT_MS 30000
#define SERVICE_STOP_WAIT_MS  15000

/* The service's main and its argument, and its status once returned. */
static lbd_service_main_fn *service_main_fn;
static void                *service_main_arg;
static int                  service_status = 1;

/* The SCM's handle of this service's status; NULL: not a service. */
static SERVICE_STATUS_HANDLE service_handle;

/* Between the control handler's thread and the loop's: whether the stop
 * is taken (the async handle open), and the status told the SCM. */
static SRWLOCK    service_lock = SRWLOCK_INIT;
static int        stop_taken;
static uv_async_t stop_async;
static void     (*stop_fn)(void *arg);
static void      *stop_arg;

/* Tells the SCM the service's state, the controls it takes, its exit
 * code (with state STOPPED) and how long the next step may take.  Under
 * service_lock, or before another thread can call it. */
static void
status_tell(DWORD state, DWORD controls, int code, DWORD wait_ms)
{
	static DWORD   checkpoint;
	SERVICE_STATUS st;

	memset(&st, 0, sizeof(st));
	st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	st.dwCurrentState = state;
	st.dwControlsAccepted = controls;
	st.dwWin32ExitCode = code == 0 ? NO_ERROR :
	    ERROR_SERVICE_SPECIFIC_ERROR;
	st.dwServiceSpecificExitCode = (DWORD)code;
	st.dwCheckPoint = state == SERVICE_START_PENDING ||
	    state == SERVICE_STOP_PENDING ? ++checkpoint : 0;
	st.dwWaitHint = wait_ms;
	SetServiceStatus(service_handle, &st);
}

/* The SCM's controls, in the dispatcher's (main) thread: STOP and
 * SHUTDOWN start the loop's stop; INTERROGATE is answered (the SCM keeps
 * the status last told); the rest are not taken. */
static DWORD WINAPI
control(DWORD code, DWORD type, void *data, void *context)
{
	DWORD r = ERROR_CALL_NOT_IMPLEMENTED;

	(void)type;
	(void)data;
	(void)context;
	if (code == SERVICE_CONTROL_STOP ||
	    code == SERVICE_CONTROL_SHUTDOWN) {
		AcquireSRWLockExclusive(&service_lock);
		if (stop_taken) {
			status_tell(SERVICE_STOP_PENDING, 0, 0,
			    SERVICE_STOP_WAIT_MS);
			uv_async_send(&stop_async);
		}
		ReleaseSRWLockExclusive(&service_lock);
		r = NO_ERROR;
	} else if (code == SERVICE_CONTROL_INTERROGATE)
		r = NO_ERROR;
	return r;
}

/* In the loop: the SCM asked for the stop. */
static void
on_stop(uv_async_t *a)
{
	(void)a;
	stop_fn(stop_arg);
}

/* The service's main, in its own thread: the daemon's life between
 * START_PENDING and STOPPED.  Nothing when the handler cannot be
 * registered (the SCM then sees the service never start). */
static void WINAPI
service_main(DWORD argc, LPWSTR *argv)
{
	service_handle = RegisterServiceCtrlHandlerExW(argc > 0 ? argv[0] :
	    L"", control, NULL);
	if (service_handle == NULL)
		return;
	status_tell(SERVICE_START_PENDING, 0, 0, SERVICE_START_WAIT_MS);
	service_status = service_main_fn(service_main_arg);
	AcquireSRWLockExclusive(&service_lock);
	status_tell(SERVICE_STOPPED, 0, service_status, 0);
	ReleaseSRWLockExclusive(&service_lock);
}

/* lbd_service_run: see service.h.  StartServiceCtrlDispatcherW, which
 * fails at once with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT in a
 * process the SCM did not start. */
int
lbd_service_run(lbd_service_main_fn *main, void *arg, int *status,
    char *why, size_t size)
{
	SERVICE_TABLE_ENTRYW table[] = {
		{ (LPWSTR)L"lockbrokerd", service_main },
		{ NULL, NULL }
	};
	DWORD err;
	int   r = -1;

	service_main_fn = main;
	service_main_arg = arg;
	*status = 1;
	if (!StartServiceCtrlDispatcherW(table)) {
		err = GetLastError();
		if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
			snprintf(why, size, "not started by the service "
			    "control manager: register it with sc.exe create "
			    "and start it with sc.exe start (see "
			    "lockbrokerd(8)), or run it without --service");
		else
			snprintf(why, size, "StartServiceCtrlDispatcher: "
			    "error %lu", (unsigned long)err);
		goto out;
	}
	*status = service_status;
	r = 0;
out:
	return r;
}

/* lbd_service_on_stop: see service.h.  An async handle, unreferenced
 * (uv_async_init does not fail on Windows). */
void
lbd_service_on_stop(uv_loop_t *loop, void (*stop)(void *arg), void *arg)
{
	if (service_handle == NULL)
		return;
	stop_fn = stop;
	stop_arg = arg;
	uv_async_init(loop, &stop_async, on_stop);
	uv_unref((uv_handle_t *)&stop_async);
	AcquireSRWLockExclusive(&service_lock);
	stop_taken = 1;
	ReleaseSRWLockExclusive(&service_lock);
}

/* lbd_service_ready: see service.h.  RUNNING, taking STOP and SHUTDOWN
 * (not before: a stop asked meanwhile would find no loop to stop). */
void
lbd_service_ready(void)
{
	if (service_handle == NULL)
		return;
	AcquireSRWLockExclusive(&service_lock);
	status_tell(SERVICE_RUNNING, SERVICE_ACCEPT_STOP |
	    SERVICE_ACCEPT_SHUTDOWN, 0, 0);
	ReleaseSRWLockExclusive(&service_lock);
}

/* lbd_service_close: see service.h.  Under the lock, so that no control
 * sends to the handle once it is closing. */
void
lbd_service_close(void)
{
	AcquireSRWLockExclusive(&service_lock);
	if (stop_taken) {
		stop_taken = 0;
		uv_close((uv_handle_t *)&stop_async, NULL);
	}
	ReleaseSRWLockExclusive(&service_lock);
}
