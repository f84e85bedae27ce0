//! Wine: the Windows tests run under Wine on Linux, which differs from Windows in a few
//! documented ways (`../shared/WINDOWS.md` and the README). A check that depends on such a
//! difference is not skipped silently: it says so on stderr and checks what Wine does do.

/// Whether this process runs under Wine (its `ntdll` exports `wine_get_version`).
pub fn under_wine() -> bool {
    #[cfg(windows)]
    {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: both names are NUL-terminated literals; ntdll is loaded in every process
        // and the returned module handle needs no release.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }
    #[cfg(not(windows))]
    {
        false
    }
}

/// Whether a check must allow for Wine: true under Wine, after saying on stderr which
/// Windows behaviour Wine lacks (`what`).
pub fn wine_differs(what: &str) -> bool {
    let wine = under_wine();
    if wine {
        eprintln!("note: under Wine, {what}: checked as Wine behaves, not as Windows does");
    }
    wine
}
