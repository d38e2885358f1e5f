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

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Aof, Msg};
use crate::resp::reply::{encode_command, format_double};
use crate::store::{value, DumpMarks, Locked, Shard, ShardId, Store, Value};
use crate::util::clock::now_ms;

/// Fields per HSET in the dump (Redis's AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

#[derive(Default)]
pub struct Rewrite {
    /// One atomic load is all a write pays when no rewrite runs.
    active: AtomicBool,
    run: Mutex<Option<Arc<Run>>>,
    generation: AtomicU64,
}

struct Run {
    gen: u64,
    /// Per shard (db * SHARDS + shard). Read and written only under that shard's lock, which
    /// orders them.
    dumped: DumpMarks,
    out: Mutex<Dump>,
}

struct Dump {
    w: BufWriter<File>,
    selected: Option<usize>,
    error: Option<std::io::Error>,
    /// Keys past their deadline at this time are left out.
    now: u64,
}

impl Run {
    fn is_dumped(&self, id: ShardId) -> bool {
        self.dumped.is_dumped(id)
    }

    /// Writes the keys of `shard` (locked by the caller) to the dump and marks it dumped.
    fn dump_shard(&self, id: ShardId, shard: &Shard) {
        self.dumped.mark(id);
        if shard.map.is_empty() {
            return;
        }
        let now = self.out.lock().now;
        let mut text = Vec::with_capacity(shard.map.len() * 32);
        for (k, v) in &shard.map {
            let deadline = shard.deadline(k);
            if deadline.is_some_and(|d| value::is_expired(d, now)) {
                continue;
            }
            dump_value(&mut text, k, v);
            if let Some(d) = deadline {
                let d = d.to_string();
                encode_command(&mut text, &[&b"PEXPIREAT"[..], k, d.as_bytes()]);
            }
        }
        let mut out = self.out.lock();
        if out.error.is_some() {
            return;
        }
        let db = id.db as usize;
        let mut res = Ok(());
        if out.selected != Some(db) {
            let mut sel = Vec::new();
            encode_command(&mut sel, &[b"SELECT", db.to_string().as_bytes()]);
            res = out.w.write_all(&sel);
            out.selected = Some(db);
        }
        if let Err(e) = res.and_then(|_| out.w.write_all(&text)) {
            out.error = Some(e);
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

/// Where this process's rewrite writes its dump, beside the AOF (Redis's child uses this name).
pub fn temp_path(aof: &Path) -> PathBuf {
    let dir = match aof.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()))
}

impl Rewrite {
    /// True while a rewrite runs (a script then takes no shard beyond those it started with:
    /// see `Locked::try_add`, and `before_write` for why a write's shards are settled at once).
    pub fn in_progress(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    fn current(&self) -> Option<Arc<Run>> {
        if !self.active.load(Ordering::SeqCst) {
            return None;
        }
        self.run.lock().clone()
    }

    /// For a record made under the locks of `ids`: the rewrite whose tail must get it, or 0.
    pub fn needs_tail(&self, ids: &[ShardId]) -> u64 {
        let Some(run) = self.current() else {
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
    pub fn before_write(&self, locked: &Locked) {
        if locked.shard_ids().len() < 2 {
            return;
        }
        let Some(run) = self.current() else {
            return;
        };
        if !locked.shard_ids().iter().any(|&s| run.is_dumped(s)) {
            return;
        }
        for &s in locked.shard_ids() {
            if !run.is_dumped(s) {
                run.dump_shard(s, locked.shard(s));
            }
        }
    }

    /// Runs one rewrite of `store` to completion on the calling thread; the writer thread
    /// finishes it (tail, fsync, rename). The caller set `rewrite_in_progress`.
    pub fn run(&self, aof: &Aof, store: &Store, prelude: &dyn Fn() -> Vec<u8>) {
        let temp = temp_path(aof.path());
        let started = std::time::Instant::now();
        log::info!("Background append only file rewriting started");
        let run = match self.begin(store.dbs.len(), &temp, prelude) {
            Ok(run) => run,
            Err((gen, e)) => {
                log::warn!("cannot create {} for the AOF rewrite: {e}", temp.display());
                aof.send(Msg::RewriteFailed { gen });
                return;
            }
        };
        for (id, lock) in store.shard_locks() {
            let g = lock.read();
            if !run.is_dumped(id) {
                run.dump_shard(id, &g);
            }
        }
        // Done goes first: a record made after it is written to the new file anyway, and one
        // that still sees this run finds every shard dumped and is marked for its tail.
        match run.finish() {
            Ok(()) => {
                log::info!(
                    "AOF rewrite: dump written to {} in {:.3} seconds",
                    temp.display(),
                    started.elapsed().as_secs_f64()
                );
                aof.send(Msg::RewriteDone { temp, gen: run.gen });
            }
            Err(e) => {
                log::warn!(
                    "Background AOF rewrite failed writing {}: {e}",
                    temp.display()
                );
                let _ = std::fs::remove_file(&temp);
                aof.send(Msg::RewriteFailed { gen: run.gen });
            }
        }
        self.end();
    }

    /// Creates the dump file and makes the run visible to writers.
    fn begin(
        &self,
        dbs: usize,
        temp: &Path,
        prelude: &dyn Fn() -> Vec<u8>,
    ) -> Result<Arc<Run>, (u64, std::io::Error)> {
        let gen = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut file = File::create(temp).map_err(|e| (gen, e))?;
        // Taken after the file exists and before the run is visible: a library changed later
        // is logged to the tail (and loading the same library twice is a no-op).
        file.write_all(&prelude()).map_err(|e| (gen, e))?;
        let run = Arc::new(Run {
            gen,
            dumped: DumpMarks::new(dbs),
            out: Mutex::new(Dump {
                w: BufWriter::with_capacity(1 << 20, file),
                selected: None,
                error: None,
                now: now_ms(),
            }),
        });
        *self.run.lock() = Some(run.clone());
        self.active.store(true, Ordering::SeqCst);
        Ok(run)
    }

    fn end(&self) {
        self.active.store(false, Ordering::SeqCst);
        *self.run.lock() = None;
    }
}

impl Run {
    /// Flushes and fsyncs the dump.
    fn finish(&self) -> std::io::Result<()> {
        let mut out = self.out.lock();
        match out.error.take() {
            Some(e) => Err(e),
            None => out.w.flush().and_then(|_| out.w.get_ref().sync_data()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

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
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("dump.aof");
        let store = Store::new(1);
        let (a, b) = two_keys();
        let (sa, sb) = (ShardId::of_key(0, &a), ShardId::of_key(0, &b));
        for (k, s) in [(&a, sa), (&b, sb)] {
            let mut l = store.lock(smallvec![s], true);
            l.shard_mut(s).map.insert(k[..].into(), Value::str(b"old"));
        }
        let rw = Rewrite::default();
        let run = rw.begin(1, &temp, &Vec::new).unwrap();
        // The dumper has reached a's shard but not b's.
        run.dump_shard(sa, store.lock(smallvec![sa], false).shard(sa));
        assert_eq!(rw.needs_tail(&[sa]), run.gen);
        assert_eq!(rw.needs_tail(&[sb]), 0);
        // A command writing both: b's shard is dumped before it changes anything ...
        let mut l = store.lock(smallvec![sa, sb], true);
        rw.before_write(&l);
        assert!(run.is_dumped(sb));
        for s in [sa, sb] {
            l.shard_mut(s).map.clear();
        }
        // ... so its record goes to the tail, and the dump holds both keys as they were.
        assert_eq!(rw.needs_tail(l.shard_ids()), run.gen);
        drop(l);
        run.finish().unwrap();
        rw.end();
        assert_eq!(rw.needs_tail(&[sa]), 0);
        let text = std::fs::read(&temp).unwrap();
        let mut want = Vec::new();
        encode_command(&mut want, &[b"SELECT", &b"0"[..]]);
        encode_command(&mut want, &[&b"SET"[..], &a, b"old"]);
        encode_command(&mut want, &[&b"SET"[..], &b, b"old"]);
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&want)
        );
    }
}
