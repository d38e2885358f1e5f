//! The process's resident set (INFO's used_memory_rss, and what a memory limit's heap trim
//! watches).

/// Resident set size in bytes, from /proc/self/statm.
pub fn resident() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// Unmaps the pages of the program's and its libraries' read-only file mappings (code,
/// constants, relocation tables), which start-up reads once (the command table, the config,
/// the loader) and serving mostly never again: about half the binary's resident pages. Each
/// page that serving touches comes back from the page cache on first use (a minor fault), so
/// the resident set is the working set. Dropping a clean page of a private mapping is what
/// the kernel may do at any time under memory pressure; a mapping with any page written (a
/// relocated `.data.rel.ro`, a debugger's breakpoint) holds changes the file lacks and is
/// left alone, as is anything writable. Returns the bytes unmapped.
pub fn drop_clean_file_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut dropped = 0;
    for m in clean_file_mappings(&smaps) {
        // SAFETY: the range is one of this process's mappings, read-only, file-backed and
        // without a written page: MADV_DONTNEED only lets its pages be read again from the
        // file, which holds exactly what they hold.
        if unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED) } == 0 {
            dropped += m.resident;
        }
    }
    dropped
}

struct Mapping {
    start: usize,
    len: usize,
    resident: u64,
}

/// The mappings of `smaps` that are private, not writable, backed by a file, and have no
/// anonymous (copied-on-write) page.
fn clean_file_mappings(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    // The mapping being read, if it qualifies so far, with its Rss once seen.
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-').and_then(|(a, b)| {
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        }) {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            current = (perms.len() == 4
                && !perms.contains('w')
                && perms.ends_with('p')
                && path.starts_with('/')
                && end > start)
                .then_some(Mapping {
                    start,
                    len: end - start,
                    resident: 0,
                });
            continue;
        }
        let kb = fields.next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => {
                if let (Some(m), Some(v)) = (current.as_mut(), kb) {
                    m.resident = v * 1024;
                }
            }
            // Listed after Rss; a mapping qualifies only once it is seen to be zero.
            "Anonymous:" => {
                if let Some(m) = current.take() {
                    if kb == Some(0) {
                        out.push(m);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d6c3da0000-55d6c3fee000 r--p 00000000 08:01 1234 /usr/bin/rudis-server
Size:               2360 kB
Rss:                1216 kB
Anonymous:             0 kB
55d6c3fee000-55d6c45ad000 r-xp 0024e000 08:01 1234 /usr/bin/rudis-server
Rss:                3380 kB
Anonymous:             0 kB
55d6c45ad000-55d6c4612000 r--p 0080d000 08:01 1234 /usr/bin/rudis-server
Rss:                 404 kB
Anonymous:           404 kB
55d6c4612000-55d6c4614000 rw-p 00872000 08:01 1234 /usr/bin/rudis-server
Rss:                   8 kB
Anonymous:             8 kB
55dcef14b000-55dcf5b41000 rw-p 00000000 00:00 0                          [heap]
Rss:              106280 kB
Anonymous:        106280 kB
7fa0921ee000-7fa092344000 r-xp 00028000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1096 kB
Anonymous:             0 kB
7fa0924ee000-7fa0924f0000 r--s 00000000 08:01 77 /some/shared/file
Rss:                   8 kB
Anonymous:             0 kB
7ffc8d8fa000-7ffc8d91b000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings_qualify() {
        let got: Vec<(usize, u64)> = clean_file_mappings(SMAPS)
            .iter()
            .map(|m| (m.start, m.resident / 1024))
            .collect();
        // Not the relocated (written) r--p, the writable data, the heap, a shared mapping,
        // nor the vdso.
        assert_eq!(
            got,
            vec![
                (0x55d6c3da0000, 1216),
                (0x55d6c3fee000, 3380),
                (0x7fa0921ee000, 1096)
            ]
        );
    }

    fn rss_file() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    #[test]
    fn dropping_lowers_the_file_backed_resident_set() {
        let before = rss_file();
        let dropped = drop_clean_file_pages();
        let after = rss_file();
        assert!(dropped > 0, "nothing dropped ({before} resident in files)");
        assert!(after < before, "RssFile {before} -> {after}");
    }
}
