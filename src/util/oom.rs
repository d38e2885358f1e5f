//! `oom-score-adj` (Redis's setOOMScoreAdj): the process's /proc/self/oom_score_adj follows
//! its role's value of `oom-score-adj-values` (master, replica; rudis has no fork child for the
//! third), relative to the score it had before rudis first changed it, or as given
//! (`absolute`); turned off, the score goes back to that base. Off and never on, the file is
//! not touched.

use parking_lot::Mutex;

/// The score before the first change, once one was made.
static BASE: Mutex<Option<i32>> = Mutex::new(None);

const PATH: &str = "/proc/self/oom_score_adj";

/// Applies `mode` (`no`, `yes`, `relative`, `absolute`) with `values` (three scores) for a
/// master (`replica` false) or a replica. Err: the file could not be read or written (logged
/// by the caller, as Redis logs it).
pub fn apply(mode: &str, values: &str, replica: bool) -> Result<(), String> {
    let mut base = BASE.lock();
    let val = if mode != "no" {
        let b = match *base {
            Some(b) => b,
            None => {
                let text = std::fs::read_to_string(PATH).map_err(|e| {
                    format!("Unable to read oom_score_adj: {}", super::strerror(&e))
                })?;
                let b = text.trim().parse().unwrap_or(0);
                *base = Some(b);
                b
            }
        };
        let scores: Vec<i32> = values
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let mut val = scores.get(usize::from(replica)).copied().unwrap_or(0);
        if mode != "absolute" {
            val += b;
        }
        val.clamp(-1000, 1000)
    } else if let Some(b) = base.take() {
        b
    } else {
        return Ok(());
    };
    std::fs::write(PATH, format!("{val}\n"))
        .map_err(|e| format!("Unable to write oom_score_adj: {}", super::strerror(&e)))
}
