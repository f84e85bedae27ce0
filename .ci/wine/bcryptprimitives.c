/*
 * bcryptprimitives.dll for Wine 8, which lacks ProcessPrng: Rust's std (1.78 and later) imports
 * it, so without this DLL every Rust executable fails to start under Wine 8 ("bcryptprimitives.dll
 * not found", exit 53). Test-only: .ci/wine/env builds it with mingw and puts its folder on
 * WINEPATH. Never shipped with ringport.
 */
#include <windows.h>

/* RtlGenRandom: advapi32's SystemFunction036. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Fills `data` with `len` random bytes; always TRUE, as documented. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) {
            /* Documented never to fail; a failure here must not hand out predictable bytes. */
            TerminateProcess(GetCurrentProcess(), 3);
        }
        data += n;
        len -= n;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
