//! Redis 7's multi-part AOF: `<dir>/<appenddirname>/` holds a base file (RDB or commands),
//! incr files of the commands since, history files no longer part of the data, and
//! `<appendfilename>.manifest`, which names them. rudis reads and writes it as Redis 7.0's
//! aof.c does (same names, same manifest lines), so that a data directory moves between the
//! two servers both ways.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Redis's MANIFEST_MAX_LINE: a longer line is refused.
const MAX_LINE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Base,
    History,
    Incr,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Base => 'b',
            Kind::History => 'h',
            Kind::Incr => 'i',
        }
    }
}

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub seq: i64,
    pub kind: Kind,
}

/// A manifest as Redis 7.0's `aofManifest`: the base, the history files, the incr files in
/// rising seq, and the last seqs given (new files take the next ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<Part>,
    pub history: Vec<Part>,
    pub incrs: Vec<Part>,
    base_seq: i64,
    incr_seq: i64,
}

/// A manifest line Redis would refuse, in its words.
#[derive(Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 0: the file as a whole (it is empty).
    pub line: usize,
    pub reason: &'static str,
}

/// A manifest on disk that Redis would refuse: the report a start or the writer gives.
#[derive(Debug)]
pub struct BadManifest {
    pub path: PathBuf,
    pub bad: BadLine,
}

impl std::fmt::Display for BadManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bad AOF manifest {}, at line {}: {}",
            self.path.display(),
            self.bad.line,
            self.bad.reason
        )
    }
}

impl std::error::Error for BadManifest {}

impl Manifest {
    /// Parses as `aofLoadManifestFromFile`: one `file NAME seq N type T` per line (keys in any
    /// order, more pairs allowed, `#` comments), at most one base, incr files in rising seq.
    pub fn parse(text: &[u8]) -> Result<Manifest, BadLine> {
        let mut m = Manifest::default();
        let mut lines = 0;
        for (i, raw) in text.split_inclusive(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            lines = line;
            let bad = |reason| Err(BadLine { line, reason });
            if raw.first() == Some(&b'#') {
                continue;
            }
            // fgets reads MAX_LINE bytes at most: past that, or at the end, no newline.
            if !raw.ends_with(b"\n") || raw.len() > MAX_LINE {
                return bad("The AOF manifest file contains too long line");
            }
            let text = String::from_utf8_lossy(raw);
            let trimmed = text.trim_matches([' ', '\t', '\r', '\n']);
            let Some(words) = crate::config::split_args(trimmed)
                .filter(|w| !trimmed.is_empty() && w.len() >= 6 && w.len() % 2 == 0)
            else {
                return bad("Invalid AOF manifest file format");
            };
            let (mut name, mut seq, mut kind) = (None, 0i64, None);
            for pair in words.chunks(2) {
                match pair[0].to_ascii_lowercase().as_str() {
                    "file" => {
                        if pair[1].contains('/') {
                            return bad("File can't be a path, just a filename");
                        }
                        name = Some(pair[1].clone());
                    }
                    "seq" => seq = atoll(&pair[1]),
                    "type" => kind = pair[1].chars().next(),
                    _ => {}
                }
            }
            let (Some(name), Some(kind)) = (name, kind) else {
                return bad("Invalid AOF manifest file format");
            };
            if seq == 0 {
                return bad("Invalid AOF manifest file format");
            }
            match kind {
                'b' if m.base.is_some() => return bad("Found duplicate base file information"),
                'b' => {
                    m.base_seq = seq;
                    m.base = Some(Part {
                        name,
                        seq,
                        kind: Kind::Base,
                    });
                }
                'h' => m.history.push(Part {
                    name,
                    seq,
                    kind: Kind::History,
                }),
                'i' if seq <= m.incr_seq => return bad("Found a non-monotonic sequence number"),
                'i' => {
                    m.incr_seq = seq;
                    m.incrs.push(Part {
                        name,
                        seq,
                        kind: Kind::Incr,
                    });
                }
                _ => return bad("Unknown AOF file type"),
            }
        }
        if lines == 0 {
            return Err(BadLine {
                line: 0,
                reason: "Found an empty AOF manifest",
            });
        }
        Ok(m)
    }

    /// The manifest's text as `getAofManifestAsString`: base, history, incr files.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let needs_repr = p
                .name
                .bytes()
                .any(|b| !b.is_ascii_graphic() || matches!(b, b'"' | b'\\'));
            let name = if needs_repr {
                crate::config::repr(&p.name)
            } else {
                p.name.clone()
            };
            out.push_str(&format!(
                "file {name} seq {} type {}\n",
                p.seq,
                p.kind.letter()
            ));
        }
        out
    }

    /// True when it names no file that holds data.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }

    /// A new base (`<aof>.<seq>.base.rdb`, or `.aof` for commands); the old one becomes
    /// history (`getNewBaseFileNameAndMarkPreAsHistory`).
    pub fn new_base(&mut self, aof: &str, rdb: bool) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = Kind::History;
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = format!(
            "{aof}.{}.base.{}",
            self.base_seq,
            if rdb { "rdb" } else { "aof" }
        );
        self.base = Some(Part {
            name: name.clone(),
            seq: self.base_seq,
            kind: Kind::Base,
        });
        name
    }

    /// A new incr file, `<aof>.<seq>.incr.aof`, last in the list.
    pub fn new_incr(&mut self, aof: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{aof}.{}.incr.aof", self.incr_seq);
        self.incrs.push(Part {
            name: name.clone(),
            seq: self.incr_seq,
            kind: Kind::Incr,
        });
        name
    }

    /// The incr file to append to: the last one, or a new one (true: created).
    pub fn last_incr(&mut self, aof: &str) -> (String, bool) {
        match self.incrs.last() {
            Some(p) => (p.name.clone(), false),
            None => (self.new_incr(aof), true),
        }
    }

    /// After a rewrite: the incr files it covers become history, all but the last one if
    /// `keep_last` (`markRewrittenIncrAofAsHistory`).
    pub fn incrs_to_history(&mut self, keep_last: bool) {
        let keep = if keep_last { self.incrs.pop() } else { None };
        // Each to the front, the newest first, so that they keep their order there.
        for mut p in std::mem::take(&mut self.incrs).into_iter().rev() {
            p.kind = Kind::History;
            self.history.insert(0, p);
        }
        self.incrs.extend(keep);
    }

    /// The history files, taken out of the manifest (to be deleted).
    pub fn take_history(&mut self) -> Vec<Part> {
        std::mem::take(&mut self.history)
    }
}

/// C's atoll: leading blanks, a sign, digits; 0 when there are none.
fn atoll(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.wrapping_mul(10).wrapping_add((b - b'0') as i64);
    }
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// Where a multi-part AOF lives: the directory (`dir/appenddirname`) and the file name its
/// parts are named after (`appendfilename`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dir {
    pub path: PathBuf,
    pub name: String,
}

impl Dir {
    pub fn manifest_path(&self) -> PathBuf {
        self.path.join(format!("{}.manifest", self.name))
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The manifest on disk; None when there is none (an empty or new directory).
    pub fn read(&self) -> std::io::Result<Option<Result<Manifest, BadManifest>>> {
        let path = self.manifest_path();
        match std::fs::read(&path) {
            Ok(text) => Ok(Some(
                Manifest::parse(&text).map_err(|bad| BadManifest { path, bad }),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.path)
    }

    /// Writes the manifest as `writeAofManifestFile`: a temp file, fsynced, renamed over the
    /// manifest, then the directory fsynced (new parts may have been added to it). Past the
    /// rename the new manifest is the one a start reads, so an error after it is only logged:
    /// the caller must not undo what it names.
    pub fn persist(&self, m: &Manifest) -> std::io::Result<()> {
        let temp = self.path.join(format!("temp-{}.manifest", self.name));
        let res = (|| {
            let mut f = File::create(&temp)?;
            f.write_all(m.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&temp, self.manifest_path())
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&temp);
            return res;
        }
        if let Err(e) = File::open(&self.path).and_then(|d| d.sync_all()) {
            log::warn!("Fail to fsync AOF directory {}: {e}.", self.path.display());
        }
        Ok(())
    }

    /// Deletes the history files and writes the manifest without them
    /// (`aofDelHistoryFiles`). A file that cannot be deleted is only logged: it is not data.
    pub fn delete_history(&self, m: &mut Manifest) -> std::io::Result<()> {
        if m.history.is_empty() {
            return Ok(());
        }
        for p in m.take_history() {
            log::info!("Removing the history file {}", p.name);
            if let Err(e) = std::fs::remove_file(self.file(&p.name)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::warn!("cannot remove the history file {}: {e}", p.name);
                }
            }
        }
        self.persist(m)
    }

    /// Moves a pre-7 single AOF (`old`, in the server's dir) into the directory as its base,
    /// as Redis 7's `aofUpgradePrepare` does when it finds one there and the directory has
    /// no manifest, an empty one, or one naming only that file which is not there yet. The
    /// manifest is written first: a crash between the two steps is resumed at the next start.
    pub fn upgrade_from(&self, old: &Path) -> std::io::Result<bool> {
        if !old.is_file() {
            return Ok(false);
        }
        let current = match self.read()? {
            Some(Ok(m)) => m,
            Some(Err(_)) => return Ok(false),
            None => Manifest::default(),
        };
        let only_old = current.incrs.is_empty()
            && current.base.as_ref().is_some_and(|b| b.name == self.name)
            && !self.file(&self.name).exists();
        if !current.is_empty() && !only_old {
            return Ok(false);
        }
        self.create()?;
        let m = Manifest {
            base: Some(Part {
                name: self.name.clone(),
                seq: 1,
                kind: Kind::Base,
            }),
            base_seq: 1,
            ..Manifest::default()
        };
        self.persist(&m)?;
        std::fs::rename(old, self.file(&self.name))?;
        log::info!(
            "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
            self.name,
            self.path.display()
        );
        Ok(true)
    }

    /// A part's size (0 if it is not there).
    pub fn size(&self, p: &Part) -> u64 {
        std::fs::metadata(self.file(&p.name)).map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_redis_writes_it() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                    file appendonly.aof.1.base.rdb seq 1 type h\n\
                    file appendonly.aof.3.incr.aof seq 3 type i\n\
                    file appendonly.aof.5.incr.aof seq 5 type i\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.render(), text);
        assert_eq!(m.base.as_ref().unwrap().seq, 2);
        assert_eq!(m.incrs.len(), 2);
        // Keys in any order, extra pairs, comments.
        let m2 = Manifest::parse(b"# c\nseq 1 type i file a.aof future x\n").unwrap();
        assert_eq!(m2.incrs[0].name, "a.aof");
    }

    #[test]
    fn bad_manifests_get_redis_s_reasons() {
        for (text, line, reason) in [
            ("", 0, "Found an empty AOF manifest"),
            ("\n", 1, "Invalid AOF manifest file format"),
            ("file a seq 1\n", 1, "Invalid AOF manifest file format"),
            (
                "file a seq 1 type i",
                1,
                "The AOF manifest file contains too long line",
            ),
            (
                "file a seq 0 type i\n",
                1,
                "Invalid AOF manifest file format",
            ),
            ("file a seq 1 type x\n", 1, "Unknown AOF file type"),
            (
                "file a/b seq 1 type i\n",
                1,
                "File can't be a path, just a filename",
            ),
            (
                "file a seq 1 type b\nfile b seq 2 type b\n",
                2,
                "Found duplicate base file information",
            ),
            (
                "file a seq 2 type i\nfile b seq 2 type i\n",
                2,
                "Found a non-monotonic sequence number",
            ),
        ] {
            assert_eq!(
                Manifest::parse(text.as_bytes()),
                Err(BadLine { line, reason }),
                "{text:?}"
            );
        }
        let long = format!("file {} seq 1 type i\n", "a".repeat(MAX_LINE));
        assert_eq!(
            Manifest::parse(long.as_bytes()).unwrap_err().reason,
            "The AOF manifest file contains too long line"
        );
    }

    #[test]
    fn a_rewrite_gives_new_parts_the_next_seqs_and_history_the_old_ones() {
        let mut m = Manifest::parse(
            b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
        )
        .unwrap();
        assert_eq!(
            m.new_base("appendonly.aof", true),
            "appendonly.aof.2.base.rdb"
        );
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
        m.incrs_to_history(true);
        assert_eq!(
            m.render(),
            "file appendonly.aof.2.base.rdb seq 2 type b\n\
             file appendonly.aof.1.incr.aof seq 1 type h\n\
             file appendonly.aof.1.base.rdb seq 1 type h\n\
             file appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        assert_eq!(m.take_history().len(), 2);
        // With the AOF off, a rewrite leaves no incr file.
        m.new_base("appendonly.aof", false);
        m.incrs_to_history(false);
        assert!(m.incrs.is_empty());
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.3.base.aof");
        // Several incr files (failed rewrites in Redis) go to history in their order.
        let mut m = Manifest::parse(
            b"file b seq 1 type b\nfile x seq 1 type i\nfile y seq 2 type i\nfile z seq 3 type i\n",
        )
        .unwrap();
        m.new_base("n", true);
        m.new_incr("n");
        m.incrs_to_history(true);
        let order: Vec<&str> = m.history.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["x", "y", "z", "b"]);
    }

    #[test]
    fn names_with_spaces_are_quoted_and_read_back() {
        let mut m = Manifest::default();
        m.new_base("my aof", true);
        let text = m.render();
        assert_eq!(text, "file \"my aof.1.base.rdb\" seq 1 type b\n");
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn an_old_single_file_is_moved_in_as_the_base() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("appendonly.aof");
        std::fs::write(&old, "*1\r\n$4\r\nPING\r\n").unwrap();
        let d = Dir {
            path: tmp.path().join("appendonlydir"),
            name: "appendonly.aof".into(),
        };
        assert!(d.upgrade_from(&old).unwrap());
        assert!(!old.exists());
        assert!(d.file("appendonly.aof").exists());
        let m = d.read().unwrap().unwrap().unwrap();
        assert_eq!(m.render(), "file appendonly.aof seq 1 type b\n");
        // Once upgraded, a new file of that name in the server's dir is left alone.
        std::fs::write(&old, "").unwrap();
        assert!(!d.upgrade_from(&old).unwrap());
    }
}
