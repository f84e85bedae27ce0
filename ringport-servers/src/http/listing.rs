//! The HTML listing of a folder (`--list`): names escaped, links percent-encoded, sizes and
//! dates, sorted (folders first, then by name), a parent link below the root.
//!
//! The folder is read on the worker thread (`getdents64` and one `fstatat` per entry without
//! following links: a link's own size and date, nothing about what it points to), at most
//! [`MAX_ENTRIES`] entries; the page says how many were left out.
//!
//! Platform specific: on Windows the folder is read by path (`FindFirstFileW` through
//! `read_dir`), after checks that it lies beneath the served folder, and reparse points
//! (symbolic links, junctions) are left out, since they are never served there.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use percent_encoding::percent_encode;
use ringport::Dir;

use super::path::SEGMENT;
use crate::sys::{self, Folder};

/// Most entries listed.
pub const MAX_ENTRIES: usize = 10_000;

/// One listed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The name (bytes, as on disk).
    pub name: Vec<u8>,
    /// A folder.
    pub dir: bool,
    /// A symbolic link.
    pub link: bool,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub modified: i64,
}

/// Reads `folder` (taken and closed), found at `rel` beneath `root`: its entries, and how
/// many more were left out.
///
/// # Errors
/// When it cannot be read.
pub(crate) fn read(
    folder: Folder,
    root: &Dir,
    rel: &[u8],
    hidden: bool,
) -> std::io::Result<(Vec<Item>, usize)> {
    let mut entries = sys::entries(folder, root, rel)?;
    let mut items = Vec::new();
    let mut left_out = 0;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if !hidden && entry.name().starts_with(b".") {
            continue;
        }
        if items.len() >= MAX_ENTRIES {
            left_out += 1;
            continue;
        }
        if let Some(item) = entries.item(entry) {
            items.push(item);
        }
    }
    items.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok((items, left_out))
}

/// Escapes text for HTML (element content and quoted attributes).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A size for people: bytes, KiB, MiB, GiB.
fn human(size: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut v = size as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The page for the folder at URL path `/segments…/` (decoded segments).
pub fn page(segments: &[Vec<u8>], items: &[Item], left_out: usize) -> String {
    let shown: String = segments
        .iter()
        .map(|s| format!("/{}", String::from_utf8_lossy(s)))
        .collect::<String>()
        + "/";
    let title = escape_html(&shown);
    let mut out = String::with_capacity(512 + items.len() * 160);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Index of {title}</title>\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em}}td.n{{text-align:right}}</style>\
         </head>\n<body><h1>Index of {title}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n"
    );
    if !segments.is_empty() {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for item in items {
        // `./` first, so that a name like `javascript:x` or `a:b` stays a relative path.
        let mut href = String::from("./");
        href.extend(percent_encode(&item.name, SEGMENT));
        let mut text = escape_html(&String::from_utf8_lossy(&item.name));
        if item.dir {
            href.push('/');
            text.push('/');
        }
        let size = if item.dir || item.link {
            String::new()
        } else {
            human(item.size)
        };
        let modified = u64::try_from(item.modified)
            .map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{text}</a></td><td class=\"n\">{size}</td><td>{modified}</td></tr>",
            escape_html(&href)
        );
    }
    out.push_str("</table>\n");
    if left_out > 0 {
        let _ = writeln!(out, "<p>{left_out} more entries not listed.</p>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_links_encoded() {
        let item = |name: &[u8], dir| Item {
            name: name.to_vec(),
            dir,
            link: false,
            size: 2048,
            modified: 0,
        };
        let items = [
            item(b"sub dir", true),
            item(b"<script>alert(1)</script>", false),
            item(b"a\"b'#?%.txt", false),
            item(b"javascript:alert(1)", false),
            item("caf\u{e9}.txt".as_bytes(), false),
        ];
        let p = page(&[b"x".to_vec()], &items, 3);
        assert!(p.contains("<a href=\"./sub%20dir/\">sub dir/</a>"));
        assert!(p.contains(
            "<a href=\"./%3Cscript%3Ealert(1)%3C%2Fscript%3E\">&lt;script&gt;alert(1)&lt;/script&gt;</a>"
        ));
        assert!(p.contains("<a href=\"./a%22b%27%23%3F%25.txt\">a&quot;b&#39;#?%.txt</a>"));
        assert!(p.contains("href=\"./javascript:alert(1)\""));
        assert!(p.contains("href=\"./caf%C3%A9.txt\">café.txt</a>"));
        assert!(p.contains("2.0 KiB"));
        assert!(p.contains("href=\"../\""));
        assert!(p.contains("3 more entries"));
        assert!(!page(&[], &items, 0).contains("href=\"../\""));
    }

    #[test]
    fn sizes() {
        assert_eq!(human(5), "5 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
    }
}
