//! SLOWLOG's log (Redis's slowlog.c): the commands that ran at least
//! `slowlog-log-slower-than` microseconds, newest first, at most `slowlog-max-len` of them,
//! their arguments trimmed as Redis trims them. Only a slow command takes its lock.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

pub struct Entry {
    pub id: u64,
    pub time: u64,
    pub duration: u64,
    pub argv: Vec<Vec<u8>>,
    pub peer: String,
    pub name: Vec<u8>,
}

#[derive(Default)]
pub struct Slowlog {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// `argv` as the log keeps it: at most 32 arguments (the last saying how many more there
/// were), each at most 128 bytes (with how many more there were).
pub fn trimmed(argv: &[&[u8]]) -> Vec<Vec<u8>> {
    let n = argv.len().min(MAX_ARGC);
    (0..n)
        .map(|j| {
            if n != argv.len() && j == n - 1 {
                format!("... ({} more arguments)", argv.len() - n + 1).into_bytes()
            } else if argv[j].len() > MAX_STRING {
                let mut s = argv[j][..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", argv[j].len() - MAX_STRING).as_bytes(),
                );
                s
            } else {
                argv[j].to_vec()
            }
        })
        .collect()
}

impl Slowlog {
    pub fn push(&self, argv: Vec<Vec<u8>>, duration: u64, peer: String, name: Vec<u8>) {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let max = super::settings().slowlog_max_len();
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push_front(Entry {
            id,
            time,
            duration,
            argv,
            peer,
            name,
        });
        inner.entries.truncate(max);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.inner.lock().entries.clear();
    }

    /// A shorter `slowlog-max-len` drops the oldest entries at the next push, as Redis; a
    /// reader sees at most that many.
    pub fn newest(&self, count: usize, mut each: impl FnMut(&Entry)) -> usize {
        let inner = self.inner.lock();
        let n = count.min(inner.entries.len());
        inner.entries.iter().take(n).for_each(&mut each);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_trimmed_as_redis_trims_them() {
        let args: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let t = trimmed(&refs);
        assert_eq!(t.len(), 32);
        assert_eq!(t[31], b"... (9 more arguments)");
        let long = vec![b'x'; 200];
        let t = trimmed(&[b"set", &long]);
        assert_eq!(t[1].len(), 128 + "... (72 more bytes)".len());
        assert!(t[1].ends_with(b"... (72 more bytes)"));
    }
}
