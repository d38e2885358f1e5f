//! Placeholder: f64-backed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct F80(f64);

impl F80 {
    pub fn parse(arg: &[u8]) -> Option<F80> {
        let s = std::str::from_utf8(arg).ok()?;
        if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
            return None;
        }
        let v: f64 = s.parse().ok()?;
        if v.is_nan() {
            return None;
        }
        Some(F80(v))
    }
    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }
    pub fn to_human(self) -> String {
        let s = format!("{:.17}", self.0);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.into()
        }
    }
}

impl std::ops::Add for F80 {
    type Output = F80;
    fn add(self, o: F80) -> F80 {
        F80(self.0 + o.0)
    }
}
