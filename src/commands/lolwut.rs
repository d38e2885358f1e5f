//! LOLWUT [VERSION v] [...]: Redis 7.0's computer art, drawn as its src/lolwut*.c draw it,
//! so that the same arguments give the same bytes wherever no random number is drawn (Redis
//! seeds rand() from the time and its pid, so no client can reproduce the rest either).
//!
//! The arithmetic keeps C's types on purpose: `float` where Redis has float, `double` where
//! C promotes to it, truncation where C converts to int. A pixel off by one rounding changes
//! the picture.

use std::f64::consts::PI;

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, Keys};
use crate::commands::connection::REDIS_VERSION;

pub static COMMANDS: &[CommandSpec] = &[cmd!("lolwut", -1, READONLY | FAST, Keys::None, lolwut)];

/// Redis's square root of 2, cut short: SQRT_2 itself would round some squares differently.
#[allow(clippy::approx_constant)]
const REDIS_SQRT_2: f64 = 1.4142135623;

/// C's RAND_MAX on glibc.
const RAND_MAX: i32 = i32::MAX;

/// A number in 0..=RAND_MAX, as C's rand() gives.
fn rand() -> i32 {
    (crate::store::evict::random() >> 33) as i32
}

fn lolwut(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // As Redis: VERSION and its number are taken off, and the version's own arguments follow
    // the number (which stands where the command name was).
    let (version, argv) = if argv.len() >= 3 && argv[1].eq_ignore_ascii_case(b"version") {
        let v = args::int(argv[2])?;
        // C's `(unsigned int)ver` printed as "%u.0.0".
        (format!("{}.0.0", v as u32), &argv[2..])
    } else {
        (REDIS_VERSION.to_string(), argv)
    };
    let v = version.as_bytes();
    let (c0, c1, c2) = (v[0], v.get(1).copied(), v.get(2).copied());
    let text = if (c0 == b'5' && c1 == Some(b'.') && c2 != Some(b'9'))
        || (c0 == b'4' && c1 == Some(b'.') && c2 == Some(b'9'))
    {
        version5(argv)?
    } else if (c0 == b'6' && c1 == Some(b'.') && c2 != Some(b'9'))
        || (c0 == b'5' && c1 == Some(b'.') && c2 == Some(b'9'))
    {
        version6(argv)?
    } else {
        format!("Redis ver. {REDIS_VERSION}\n").into_bytes()
    };
    ctx.out.verbatim("txt", &text);
    Ok(())
}

/// The optional integer argument `i`, else `default`, clamped as Redis clamps it.
fn arg(argv: &[&[u8]], i: usize, default: i64, max: i64) -> Result<i32, CommandError> {
    let v = match argv.get(i) {
        Some(a) => args::int(a)?,
        None => default,
    };
    Ok(v.clamp(1, max) as i32)
}

/// LOLWUT 5 [columns] [squares per row] [squares per column]: Georg Nees's Schotter.
fn version5(argv: &[&[u8]]) -> Result<Vec<u8>, CommandError> {
    let cols = arg(argv, 1, 66, 1000)?;
    let per_row = arg(argv, 2, 8, 200)?;
    let per_col = arg(argv, 3, 12, 200)?;
    let canvas = schotter(cols, per_row, per_col)?;
    let mut text = render_braille(&canvas);
    text.extend_from_slice(b"\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
    text.extend_from_slice(REDIS_VERSION.as_bytes());
    text.push(b'\n');
    Ok(text)
}

/// LOLWUT 6 [columns] [rows]: a skyline of 8 bit games.
fn version6(argv: &[&[u8]]) -> Result<Vec<u8>, CommandError> {
    let cols = arg(argv, 1, 80, 1000)?;
    let rows = arg(argv, 2, 20, 1000)?;
    let mut canvas = Canvas::new(cols, rows, 3)?;
    skyline(&mut canvas);
    let mut text = render_grays(&canvas);
    text.extend_from_slice(
        b"\nDedicated to the 8 bit game developers of past and present.\n\
          Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
    );
    text.extend_from_slice(REDIS_VERSION.as_bytes());
    text.push(b'\n');
    Ok(text)
}

/// Pixels of colors 0..=3; drawing off the canvas does nothing and reads 0 (lwCanvas).
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// Err where Redis would die for want of memory (LOLWUT 5 1000 1 200 asks 800 MB).
    fn new(width: i32, height: i32, color: u8) -> Result<Canvas, CommandError> {
        let n = width.max(0) as usize * height.max(0) as usize;
        let mut pixels = Vec::new();
        pixels
            .try_reserve_exact(n)
            .map_err(|_| CommandError::Err("LOLWUT canvas too large for memory".into()))?;
        pixels.resize(n, color);
        Ok(Canvas {
            width,
            height,
            pixels,
        })
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        ((0..self.width).contains(&x) && (0..self.height).contains(&y))
            .then(|| x as usize + y as usize * self.width as usize)
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if let Some(i) = self.index(x, y) {
            self.pixels[i] = color;
        }
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        self.index(x, y).map_or(0, |i| self.pixels[i])
    }

    /// Bresenham, as lwDrawLine.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let dx = (x2 - x1).abs();
        let dy = (y2 - y1).abs();
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square centred on x,y, turned by `angle`: its corners on the circle through them
    /// (lwDrawSquare).
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        let size = (size as f64 / REDIS_SQRT_2) as f32;
        let size = (size as f64).round() as f32;
        let mut k = (PI / 4.0 + angle as f64) as f32;
        let (mut px, mut py) = ([0i32; 4], [0i32; 4]);
        for j in 0..4 {
            px[j] = ((k as f64).sin() * size as f64 + x as f64).round() as i32;
            py[j] = ((k as f64).cos() * size as f64 + y as f64).round() as i32;
            k = (k as f64 + PI / 2.0) as f32;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// Rows of squares, more disordered the lower they are (lwDrawSchotter).
fn schotter(cols: i32, per_row: i32, per_col: i32) -> Result<Canvas, CommandError> {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(width, height, 0)?;
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0f32;
            if y > 1 {
                let r = || rand() as f32 / RAND_MAX as f32 / per_col as f32 * y as f32;
                let (mut r1, mut r2, mut r3) = (r(), r(), r());
                if rand() % 2 != 0 {
                    r1 = -r1;
                }
                if rand() % 2 != 0 {
                    r2 = -r2;
                }
                if rand() % 2 != 0 {
                    r3 = -r3;
                }
                angle = r1;
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    Ok(canvas)
}

/// Each 2x4 block of pixels as one braille character (bit 0..7: x,y x,y+1 x,y+2 x+1,y
/// x+1,y+1 x+1,y+2 x,y+3 x+1,y+3), rows of blocks on lines.
fn render_braille(c: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    for y in (0..c.height).step_by(4) {
        for x in (0..c.width).step_by(2) {
            let dots = [
                (x, y),
                (x, y + 1),
                (x, y + 2),
                (x + 1, y),
                (x + 1, y + 1),
                (x + 1, y + 2),
                (x, y + 3),
                (x + 1, y + 3),
            ];
            let byte = dots
                .iter()
                .enumerate()
                .filter(|(_, &(px, py))| c.get(px, py) != 0)
                .fold(0u32, |b, (i, _)| b | 1 << i);
            let code = 0x2800 + byte;
            text.extend_from_slice(&[
                0xE0 | (code >> 12) as u8,
                0x80 | ((code >> 6) & 0x3F) as u8,
                0x80 | (code & 0x3F) as u8,
            ]);
        }
        // As Redis: a newline after every row but one that ends exactly on the last pixel row.
        if y != c.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

/// Each pixel a space in one of the terminal's four grays, foreground and background alike.
fn render_grays(c: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    for y in 0..c.height {
        for x in 0..c.width {
            let escape: &[u8] = match c.get(x, y) {
                1 => b"0;90;100m",
                2 => b"0;37;47m",
                3 => b"0;97;107m",
                _ => b"0;30;40m",
            };
            text.extend_from_slice(b"\x1b[");
            text.extend_from_slice(escape);
            text.extend_from_slice(b" \x1b[0m");
        }
        if y != c.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

/// One building standing on the bottom row; its windows, if any, in random grays
/// (generateSkyscraper).
fn skyscraper(c: &mut Canvas, s: &Skyscraper) {
    let starty = c.height - 1;
    let endy = starty - s.height + 1;
    let mut y = starty;
    while y >= endy {
        for x in s.xoff..s.xoff + s.width {
            // The roof is four pixels narrower.
            if y == endy && (x <= s.xoff + 1 || x >= s.xoff + s.width - 2) {
                continue;
            }
            let mut color = s.color;
            if s.windows
                && x > s.xoff + 1
                && x < s.xoff + s.width - 2
                && y > endy + 1
                && y < starty - 1
            {
                let relx = x - (s.xoff + 1);
                let rely = y - (endy + 1);
                // Windows two pixels wide and one tall: terminal pixels are not square.
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = 1 + (rand() % 2) as u8;
                        if color != s.color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        color = c.get(x - 1, y);
                    }
                }
            }
            c.set(x, y, color);
        }
        y -= 1;
    }
}

/// Two grays of buildings behind, the lighter farther, then black ones with windows in front
/// (generateSkyline).
fn skyline(c: &mut Canvas) {
    let h = c.height;
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < c.width {
            offset += rand() % 8;
            let width = 10 + rand() % 9;
            let height = match color {
                2 => h / 2 + rand() % h / 2,
                _ => h / 2 + rand() % h / 3,
            };
            let s = Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            };
            skyscraper(c, &s);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < c.width {
        offset += rand() % 8;
        let mut width = 5 + rand() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + rand() % h / 2;
        let s = Skyscraper {
            xoff: offset,
            width,
            height,
            windows: true,
            color: 0,
        };
        skyscraper(c, &s);
        offset += width + 5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rows_of_schotter_are_in_order_and_in_canvas() {
        // Two rows: no random number is drawn, so this is Redis's picture exactly.
        let c = schotter(10, 2, 2).unwrap();
        assert_eq!((c.width, c.height), (20, 20));
        let text = String::from_utf8(render_braille(&c)).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.lines().all(|l| l.chars().count() == 10));
    }

    #[test]
    fn a_skyline_has_every_pixel_in_one_of_four_grays() {
        let mut c = Canvas::new(30, 12, 3).unwrap();
        skyline(&mut c);
        assert!(c.pixels.iter().all(|&p| p <= 3));
        // The front buildings are black at the bottom somewhere.
        assert!((0..30).any(|x| c.get(x, 11) == 0));
    }
}
