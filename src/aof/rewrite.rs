//! BGREWRITEAOF: writes the data as it is now, compactly, to a temp file while clients keep
//! being served, then the writer thread appends what changed meanwhile and renames the result
//! over the AOF.
//!
//! There is no fork, so the dump cannot be one instant's snapshot. It walks the shards one at a
//! time, each under its read lock, and marks the shard dumped while holding that lock. A record
//! is made under its shards' locks, so it knows where it stands:
//! - its shards are not dumped yet: the dump will see its effect; it goes to the old file only;
//! - its shards are dumped: the dump missed it; it also goes to the rewrite's *tail*, which the
//!   writer appends after the dump, in the order the records were made.
//!
//! A command locking several shards could find some dumped and some not; its record would then
//! be half in the dump and, replayed from the tail, applied twice to the other half. So such a
//! command, right after taking its locks and before it runs, dumps its undumped shards itself
//! (it holds their locks; see [`Rewrite::before_write`]): then all its shards are dumped and its
//! record goes to the tail. This keeps MSET, RENAME, EXEC, FLUSHALL... running during a rewrite
//! (a gate that stopped them for the whole dump would stall them for seconds on a large data
//! set); the cost is that such a command may dump a few shards inline.
//!
//! The old file is complete until the rename; the new file is complete (dump + tail, fsynced)
//! before it. A crash at any moment leaves a file that loads completely.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Aof, Msg};
use crate::dump::{self, Current, Encoding, Policy, Sink};
use crate::rdb::file::Options;
use crate::rdb::snapshot::RdbEncoding;
use crate::resp::reply::{encode_command, format_double};
use crate::store::{Locked, ShardId, Store, Value};

/// Fields per HSET in the dump (Redis's AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

#[derive(Default)]
pub struct Rewrite {
    current: Current,
    generation: AtomicU64,
}

/// What the new file starts with besides the keys.
pub struct Base {
    /// The function libraries' code (they are not in the store).
    pub functions: Vec<Vec<u8>>,
    /// `aof-use-rdb-preamble yes`: the keys as RDB, with these options; else as commands.
    pub rdb: Option<Options>,
    /// Redis's `rdb-key-save-delay`, which its rewrite applies too.
    pub key_delay: i64,
    /// `aof-timestamp-enabled`: a base of commands starts with a `#TS:` annotation.
    pub timestamp: bool,
}

/// Keys as the commands that rebuild them.
struct Commands;

impl Encoding for Commands {
    fn select(&self, out: &mut Vec<u8>, db: usize) {
        encode_command(out, &[b"SELECT", db.to_string().as_bytes()]);
    }

    fn key(&self, out: &mut Vec<u8>, _db: usize, key: &[u8], v: &Value, deadline: Option<u64>) {
        dump_value(out, key, v);
        if let Some(d) = deadline {
            let d = d.to_string();
            encode_command(out, &[&b"PEXPIREAT"[..], key, d.as_bytes()]);
        }
    }
}

/// One key as the commands that rebuild it.
fn dump_value(out: &mut Vec<u8>, key: &[u8], v: &Value) {
    match v {
        Value::Str(s) => encode_command(out, &[&b"SET"[..], key, s]),
        Value::Hash(h) => {
            let pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
            for chunk in pairs.chunks(ITEMS_PER_CMD) {
                let mut args: Vec<&[u8]> = Vec::with_capacity(2 + chunk.len() * 2);
                args.push(b"HSET");
                args.push(key);
                for (f, v) in chunk {
                    args.push(f);
                    args.push(v);
                }
                encode_command(out, &args);
            }
            // Field deadlines (Redis 7.4) as HPEXPIREAT, last field first: each goes before
            // those of the same deadline, so this leaves a small hash in the order it had.
            if h.has_ttls() {
                for (f, _) in pairs.iter().rev() {
                    if let Some(at) = h.ttl_of(f) {
                        let at = at.to_string();
                        encode_command(
                            out,
                            &[&b"HPEXPIREAT"[..], key, at.as_bytes(), b"FIELDS", b"1", f],
                        );
                    }
                }
            }
        }
        Value::List(l) => {
            let items: Vec<Vec<u8>> = l.iter().map(|e| e.to_vec()).collect();
            for chunk in items.chunks(ITEMS_PER_CMD) {
                let mut args: Vec<&[u8]> = Vec::with_capacity(2 + chunk.len());
                args.push(b"RPUSH");
                args.push(key);
                args.extend(chunk.iter().map(|e| &e[..]));
                encode_command(out, &args);
            }
        }
        Value::Set(set) => {
            let members: Vec<Vec<u8>> = set.iter().map(|m| m.to_vec()).collect();
            for chunk in members.chunks(ITEMS_PER_CMD) {
                let mut args: Vec<&[u8]> = Vec::with_capacity(2 + chunk.len());
                args.push(b"SADD");
                args.push(key);
                args.extend(chunk.iter().map(Vec::as_slice));
                encode_command(out, &args);
            }
        }
        Value::ZSet(z) => {
            // Scores as `%.17g`, which reads back as the same double.
            let items: Vec<(&[u8], Vec<u8>)> = z
                .iter()
                .map(|(m, s)| (m, format_double(s, &mut [0; 40]).to_vec()))
                .collect();
            for chunk in items.chunks(ITEMS_PER_CMD) {
                let mut args: Vec<&[u8]> = Vec::with_capacity(2 + chunk.len() * 2);
                args.push(b"ZADD");
                args.push(key);
                for (m, s) in chunk {
                    args.push(s);
                    args.push(m);
                }
                encode_command(out, &args);
            }
        }
        Value::Stream(s) => dump_stream(out, key, s),
    }
}

/// A stream as Redis's rewriteStreamObject writes it: its entries, its counters (XSETID),
/// then each group, its pending entries as forced XCLAIMs (which create their consumers) and
/// its consumers with nothing pending.
fn dump_stream(out: &mut Vec<u8>, key: &[u8], s: &crate::store::Stream) {
    use crate::store::stream::StreamId;
    if s.is_empty() {
        // An empty stream: XADD with MAXLEN 0 makes one.
        encode_command(
            out,
            &[&b"XADD"[..], key, b"MAXLEN", b"0", b"0-1", b"x", b"y"],
        );
    }
    for e in s.range(StreamId::MIN, StreamId::MAX, false) {
        let id = e.id.to_bytes();
        let mut args: Vec<&[u8]> = vec![b"XADD", key, &id];
        for (f, v) in e.pairs() {
            args.push(f);
            args.push(v);
        }
        encode_command(out, &args);
    }
    let added = s.entries_added.to_string();
    encode_command(
        out,
        &[
            &b"XSETID"[..],
            key,
            &s.last_id.to_bytes(),
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            &s.max_deleted.to_bytes(),
        ],
    );
    for (name, g) in &s.groups {
        let read = g.entries_read.to_string();
        encode_command(
            out,
            &[
                &b"XGROUP"[..],
                b"CREATE",
                key,
                name,
                &g.last_id.to_bytes(),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                encode_command(out, &[&b"XGROUP"[..], b"CREATECONSUMER", key, name, cname]);
                continue;
            }
            for id in &c.pel {
                let Some(nack) = g.pel.get(id) else { continue };
                let time = nack.delivery_time.to_string();
                let count = (nack.delivery_count as i64).to_string();
                encode_command(
                    out,
                    &[
                        &b"XCLAIM"[..],
                        key,
                        name,
                        cname,
                        b"0",
                        &id.to_bytes(),
                        b"TIME",
                        time.as_bytes(),
                        b"RETRYCOUNT",
                        count.as_bytes(),
                        b"JUSTID",
                        b"FORCE",
                    ],
                );
            }
        }
    }
}

/// Where this process's rewrite writes its dump, in `dir` beside the AOF's files (Redis's
/// child uses this name).
pub fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()))
}

impl Rewrite {
    /// True while a rewrite runs (a script then takes no shard beyond those it started with:
    /// see `Locked::try_add`, and `before_write` for why a write's shards are settled at once).
    pub fn in_progress(&self) -> bool {
        self.current.is_active()
    }

    /// The AOF was turned off: the running rewrite's walk stops (its file is discarded when it
    /// reports, see `Msg::RewriteDone`), as Redis kills its rewrite child.
    pub fn abort(&self) {
        if let Some(run) = self.current.get() {
            log::info!(
                "Killing running AOF rewrite child (a thread of this process in rudis): its \
                 file is discarded"
            );
            run.abort();
        }
    }

    /// For a record made under the locks of `ids`: the rewrite whose tail must get it, or 0.
    pub fn needs_tail(&self, ids: &[ShardId]) -> u64 {
        let Some(run) = self.current.get() else {
            return 0;
        };
        // `before_write` made a command's shards all dumped or all not.
        match ids.first() {
            Some(&s) if !run.is_dumped(s) => 0,
            _ => run.gen,
        }
    }

    /// Called by a write command right after it locked `locked`, before it changes anything:
    /// if a rewrite has dumped some of its shards but not others, dumps the others now.
    #[inline]
    pub fn before_write(&self, locked: &mut Locked) {
        self.current.before_write(locked);
    }

    /// Runs one rewrite of `store` to completion on the calling thread; the writer thread
    /// finishes it (tail, fsync, rename). The caller set `rewrite_in_progress`, and read
    /// `epoch` and `began_off` (see `Msg::RewriteDone`) before this begins.
    pub fn run(
        &self,
        aof: &Aof,
        store: &Store,
        base: &dyn Fn() -> Base,
        epoch: u64,
        began_off: bool,
    ) {
        let dir = aof.layout().dir();
        let temp = temp_path(&dir);
        let started = std::time::Instant::now();
        let gen = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let base = base();
        let rdb = base.rdb.is_some();
        log::info!(
            "Background append only file rewriting started{}",
            if base.rdb.is_some() {
                " (RDB preamble)"
            } else {
                ""
            }
        );
        // A multi-part AOF's directory may not be there yet (the AOF was off until now).
        match std::fs::create_dir_all(&dir).and_then(|()| self.dump(store, &temp, gen, &base)) {
            Ok(()) => {
                log::info!(
                    "AOF rewrite: base written to {} in {:.3} seconds",
                    temp.display(),
                    started.elapsed().as_secs_f64()
                );
                // Done goes first: a record made after it is written to the new file anyway,
                // and one that still sees this run finds every shard dumped and is marked for
                // its tail.
                aof.send(Msg::RewriteDone {
                    temp,
                    gen,
                    epoch,
                    began_off,
                    rdb,
                });
            }
            Err(e) => {
                log::warn!(
                    "Background AOF rewrite failed writing {}: {e}",
                    temp.display()
                );
                let _ = std::fs::remove_file(&temp);
                aof.send(Msg::RewriteFailed { gen });
            }
        }
        self.current.end();
    }

    /// Writes the whole AOF to `path` at once (through a temp file), before its writer starts
    /// and while nothing else writes: at start, the base of a multi-part AOF that has none.
    pub fn write_whole(&self, store: &Store, path: &Path, base: &Base) -> std::io::Result<()> {
        let temp = temp_path(crate::rdb::file::dir_of(path));
        let gen = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let res = self.dump(store, &temp, gen, base);
        self.current.end();
        let res = res.and_then(|_| crate::rdb::file::publish(&temp, path));
        if res.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        res
    }

    /// Writes the base of the new file to `temp`, fsynced; the run stays current (see `run`).
    fn dump(&self, store: &Store, temp: &Path, gen: u64, base: &Base) -> std::io::Result<()> {
        let out = crate::rdb::file::create(temp)?;
        let mut sink = Sink::new(out, base.rdb.is_some_and(|o| o.checksum));
        // The libraries are taken before the run is visible: one changed later is logged to
        // the tail (and loading the same library twice is a no-op).
        let encoding: Box<dyn Encoding> = match base.rdb {
            Some(o) => {
                let functions = base.functions.iter().map(|f| &f[..]);
                sink.write(&crate::rdb::file::header(o.compression, true, functions))?;
                Box::new(RdbEncoding {
                    compress: o.compression,
                })
            }
            None => {
                let mut text = Vec::new();
                if base.timestamp {
                    text.extend_from_slice(super::timestamp_annotation().as_bytes());
                }
                for code in &base.functions {
                    encode_command(&mut text, &[&b"FUNCTION"[..], b"LOAD", code]);
                }
                sink.write(&text)?;
                Box::new(Commands)
            }
        };
        let run = dump::Run::new(store.dbs.len(), Policy::Settle, encoding, sink, gen);
        run.set_key_delay(base.key_delay);
        {
            // Not while a script holding the script token runs (see `Shared::lock_for_script`).
            let _token = store.token.lock();
            self.current.start(run.clone());
        }
        run.walk(store, None);
        let (mut sink, _) = run.take_output()?;
        if base.rdb.is_some() {
            crate::rdb::file::end(&mut sink)?;
        }
        sink.finish().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use smallvec::smallvec;
    use std::sync::Arc;

    /// Two keys in different shards of db 0.
    fn two_keys() -> (Vec<u8>, Vec<u8>) {
        let a = b"key-a".to_vec();
        let b = (0..)
            .map(|i| format!("key-b{i}").into_bytes())
            .find(|k| crate::store::shard_of(k) != crate::store::shard_of(&a))
            .unwrap();
        (a, b)
    }

    #[test]
    fn a_write_spanning_dumped_and_undumped_shards_dumps_the_rest_first() {
        let store = Store::new(1);
        let (a, b) = two_keys();
        let (sa, sb) = (ShardId::of_key(0, &a), ShardId::of_key(0, &b));
        for (k, s) in [(&a, sa), (&b, sb)] {
            let mut l = store.lock(smallvec![s], true);
            l.shard_mut(s).map.insert(k[..].into(), Value::str(b"old"));
        }
        let rw = Rewrite::default();
        let bytes = Captured::default();
        let sink = Sink::new(Box::new(bytes.clone()), false);
        let run = dump::Run::new(1, Policy::Settle, Box::new(Commands), sink, 7);
        rw.current.start(run.clone());
        // The dumper has reached a's shard but not b's.
        run.dump_shard(sa, store.lock(smallvec![sa], false).shard(sa));
        assert_eq!(rw.needs_tail(&[sa]), 7);
        assert_eq!(rw.needs_tail(&[sb]), 0);
        // A write to b's shard alone goes to the old file only, and dumps nothing.
        rw.before_write(&mut store.lock(smallvec![sb], true));
        assert!(!run.is_dumped(sb));
        // A command writing both: b's shard is dumped before it changes anything ...
        let mut l = store.lock(smallvec![sa, sb], true);
        rw.before_write(&mut l);
        assert!(run.is_dumped(sb));
        for s in [sa, sb] {
            l.shard_mut(s).map.clear();
        }
        // ... so its record goes to the tail, and the dump holds both keys as they were.
        assert_eq!(rw.needs_tail(l.shard_ids()), 7);
        drop(l);
        rw.current.end();
        assert_eq!(rw.needs_tail(&[sa]), 0);
        let (sink, _) = run.take_output().unwrap();
        sink.finish().unwrap();
        let mut want = Vec::new();
        encode_command(&mut want, &[b"SELECT", &b"0"[..]]);
        encode_command(&mut want, &[&b"SET"[..], &a, b"old"]);
        encode_command(&mut want, &[&b"SET"[..], &b, b"old"]);
        let text = bytes.0.lock().clone();
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&want)
        );
    }

    /// An output the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl dump::Output for Captured {}
}
