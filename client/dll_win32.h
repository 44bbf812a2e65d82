/*
 * dll_win32.h: put ahead of every source of liblockbroker on Windows
 * (-include, Makefile.am).  libtool compiles the objects of a DLL with
 * -DDLL_EXPORT, which makes mingw-w64's pthread.h import winpthreads
 * from its own DLL (libwinpthread-1.dll); liblockbroker's DLL has
 * winpthreads linked in instead, so that it needs no DLL of the
 * toolchain beside it.  Nothing of lockbroker reads DLL_EXPORT (the DLL's
 * exports are liblockbroker.sym's names).
 */
#undef DLL_EXPORT
