//! Geo sets as Redis stores them (geohash.c, geohash_helper.c, the helpers of geo.c): a sorted
//! set whose scores are 52-bit geohashes (longitude and latitude interleaved, 26 bits each over
//! -180..180 and -85.05112878..85.05112878), so that a real Redis reading the same data finds the
//! same members. Everything here is arithmetic, done in Redis's order of operations with the same
//! libm functions, so that positions, distances and the boxes a search scans come out the same
//! to the last digit.

/// Redis's limits: the Web Mercator square (EPSG:3857), which cannot reach the poles.
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
/// 26 steps of 2 bits: 52-bit scores, exact in a double.
pub const STEP_MAX: u8 = 26;
/// Earth's quadratic mean radius for WGS-84, Redis's constant.
pub const EARTH_RADIUS_IN_METERS: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A geohash of `step` bits per coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HashBits {
    pub bits: u64,
    pub step: u8,
}

impl HashBits {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The cell a geohash names.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Area {
    pub hash: HashBits,
    pub longitude: Range,
    pub latitude: Range,
}

const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// The bits of `x` at the even positions and of `y` at the odd ones.
fn interleave64(x: u32, y: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (x as u64, y as u64);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

/// The inverse of `interleave64`: the even bits in the low half, the odd ones in the high.
fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
        0x0000_0000_FFFF_FFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// Redis's `geohashEncode`: None outside the WGS84 limits or the ranges given.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(HashBits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<HashBits> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)
}

/// Redis's `geohashDecode`: the cell of `hash`.
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    Some(Area {
        hash,
        latitude: Range {
            min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
            max: lat_range.min + ((ilato as u64 + 1) as f64 * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
            max: long_range.min + ((ilono as u64 + 1) as f64 * 1.0 / div) * long_scale,
        },
    })
}

pub fn decode_wgs84(hash: HashBits) -> Option<Area> {
    decode(WGS84_LONG, WGS84_LAT, hash)
}

/// The centre of a cell, clamped into the limits: (longitude, latitude).
pub fn area_center(area: &Area) -> (f64, f64) {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// C's `(uint64_t)` of a double as x86-64 code computes it (the score of a sorted set that
/// is not a geo set may be anything): negative values wrap, values past 2^64 and NaN give
/// the "integer indefinite" pattern.
fn c_double_to_u64(x: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let cvtt = |v: f64| -> u64 {
        if v.is_nan() || !(-TWO63..TWO63).contains(&v) {
            1 << 63
        } else {
            v as i64 as u64
        }
    };
    if x >= TWO63 {
        cvtt(x - TWO63) ^ (1 << 63)
    } else {
        cvtt(x)
    }
}

/// The position a score stands for (Redis's `decodeGeohash`): (longitude, latitude).
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    let hash = HashBits {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    decode_wgs84(hash).map(|a| area_center(&a))
}

/// A geohash's bits left-aligned to 52 (Redis's `geohashAlign52Bits`).
pub fn align52(hash: HashBits) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

/// The score GEOADD stores for a position (None outside the limits).
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

/// GEOHASH's 11 characters: the position re-encoded over the standard -90..90 latitudes.
pub fn geohash_string(longitude: f64, latitude: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let hash = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        longitude,
        latitude,
        26,
    )?;
    let mut out = [0u8; 11];
    for (i, c) in out.iter_mut().enumerate() {
        // 52 bits make ten characters; Redis pads the eleventh with a zero.
        let idx = if i == 10 {
            0
        } else {
            (hash.bits >> (52 - (i + 1) * 5)) & 0x1f
        };
        *c = ALPHABET[idx as usize];
    }
    Some(out)
}

/// Moves a geohash one cell along the axis whose bits `axis` masks (longitude: the odd bits
/// 0xaaaa..., latitude: the even ones), by adding or subtracting one across the other axis's
/// bits (Redis's `geohash_move_x` / `geohash_move_y`).
fn move_axis(hash: &mut HashBits, d: i8, axis: u64) {
    if d == 0 {
        return;
    }
    let shift = 64 - hash.step as u32 * 2;
    let mut own = hash.bits & axis;
    let other = hash.bits & !axis;
    let zz = !axis >> shift;
    if d > 0 {
        own = own.wrapping_add(zz + 1);
    } else {
        own |= zz;
        own = own.wrapping_sub(zz + 1);
    }
    own &= axis >> shift;
    hash.bits = own | other;
}

const X_BITS: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const Y_BITS: u64 = 0x5555_5555_5555_5555;

/// The eight cells around one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Neighbors {
    pub north: HashBits,
    pub east: HashBits,
    pub west: HashBits,
    pub south: HashBits,
    pub north_east: HashBits,
    pub south_east: HashBits,
    pub north_west: HashBits,
    pub south_west: HashBits,
}

pub fn neighbors(hash: HashBits) -> Neighbors {
    let moved = |dx: i8, dy: i8| {
        let mut h = hash;
        move_axis(&mut h, dx, X_BITS);
        move_axis(&mut h, dy, Y_BITS);
        h
    };
    Neighbors {
        east: moved(1, 0),
        west: moved(-1, 0),
        south: moved(0, -1),
        north: moved(0, 1),
        north_west: moved(-1, 1),
        north_east: moved(1, 1),
        south_east: moved(1, -1),
        south_west: moved(-1, -1),
    }
}

/// The great-circle distance in meters (haversine), Redis's `geohashGetDistance`.
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the distance along the meridian, without the costly terms.
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// A unit's meters (Redis's `extractUnitOrReply`), None if unknown.
pub fn unit_meters(unit: &[u8]) -> Option<f64> {
    let is = |u: &str| unit.eq_ignore_ascii_case(u.as_bytes());
    if is("m") {
        Some(1.0)
    } else if is("km") {
        Some(1000.0)
    } else if is("ft") {
        Some(0.3048)
    } else if is("mi") {
        Some(1609.34)
    } else {
        None
    }
}

/// What a search covers, around `center` (longitude, latitude); sizes in the unit whose
/// meters `conversion` is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub center: (f64, f64),
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

impl Shape {
    /// Redis's `geohashBoundingBox`: [min lon, min lat, max lon, max lat]. The box's sides
    /// follow the meridians, so its width is taken at the edge nearer the pole.
    pub fn bounding_box(&self) -> [f64; 4] {
        let (longitude, latitude) = self.center;
        let (h, w) = match self.kind {
            ShapeKind::Radius(r) => (r, r),
            ShapeKind::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let height = self.conversion * h;
        let width = self.conversion * w;
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        let delta = if latitude < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            longitude - delta,
            latitude - lat_delta,
            longitude + delta,
            latitude + lat_delta,
        ]
    }

    /// The distance from the centre if the point (a decoded score) lies in the shape (Redis's
    /// `geoWithinShape`), in meters.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        let (x1, y1) = self.center;
        match self.kind {
            ShapeKind::Radius(r) => {
                let d = distance(x1, y1, lon, lat);
                (d <= r * self.conversion).then_some(d)
            }
            ShapeKind::Box { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                // The cheaper latitude test first, as Redis.
                if lat_distance(lat, y1) > height_m / 2.0 {
                    return None;
                }
                if distance(lon, lat, x1, lat) > width_m / 2.0 {
                    return None;
                }
                Some(distance(x1, y1, lon, lat))
            }
        }
    }

    /// The score ranges `[min, max)` to scan, in Redis's order (the centre cell, then N S E W
    /// NE NW SE SW), cells that cannot hold a match left out and a cell equal to the one before
    /// it scanned once (Redis's `geohashCalculateAreasByShapeWGS84` and
    /// `membersOfAllNeighbors`).
    pub fn search_ranges(&self) -> Vec<(u64, u64)> {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let (longitude, latitude) = self.center;
        let radius_meters = self.conversion
            * match self.kind {
                ShapeKind::Radius(r) => r,
                ShapeKind::Box { width, height } => {
                    ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
                }
            };
        let mut steps = estimate_steps_by_radius(radius_meters, latitude);
        let cells = |steps: u8| {
            let hash = encode_wgs84(longitude, latitude, steps).unwrap_or_default();
            let area = decode_wgs84(hash).unwrap_or_default();
            (hash, neighbors(hash), area)
        };
        let (mut hash, mut n, mut area) = cells(steps);
        // Near a cell's edge the estimated step may be too fine for the neighbours to cover
        // the shape: one step coarser then.
        let decode = |h| decode_wgs84(h).unwrap_or_default();
        let decrease = decode(n.north).latitude.max < max_lat
            || decode(n.south).latitude.min > min_lat
            || decode(n.east).longitude.max < max_lon
            || decode(n.west).longitude.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            (hash, n, area) = cells(steps);
        }
        if steps >= 2 {
            let zero = HashBits::default();
            if area.latitude.min < min_lat {
                (n.south, n.south_west, n.south_east) = (zero, zero, zero);
            }
            if area.latitude.max > max_lat {
                (n.north, n.north_east, n.north_west) = (zero, zero, zero);
            }
            if area.longitude.min < min_lon {
                (n.west, n.south_west, n.north_west) = (zero, zero, zero);
            }
            if area.longitude.max > max_lon {
                (n.east, n.south_east, n.north_east) = (zero, zero, zero);
            }
        }
        let order = [
            hash,
            n.north,
            n.south,
            n.east,
            n.west,
            n.north_east,
            n.north_west,
            n.south_east,
            n.south_west,
        ];
        let mut out = Vec::with_capacity(9);
        let mut last: Option<HashBits> = None;
        for (i, h) in order.into_iter().enumerate() {
            if h.is_zero() {
                continue;
            }
            // Redis compares with the last cell scanned, but only once one other than the
            // centre was (its `last_processed` starts at 0, which reads as "none").
            if i > 0 && last.is_some_and(|l| l == h) {
                continue;
            }
            let min = align52(h);
            let max = align52(HashBits {
                bits: h.bits + 1,
                step: h.step,
            });
            out.push((min, max));
            if i > 0 {
                last = Some(h);
            }
        }
        out
    }
}

/// Redis's `geohashEstimateStepsByRadius`: the coarsest step whose cells still hold the radius.
pub fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    // Wider towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// A distance as Redis replies with it (`fixedpoint_d2string` with 4 decimals): rounded half to
/// even at the fourth decimal, always four digits after the point.
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let scaled = d * 10000.0;
    // llrint: to nearest, ties to even; out of range gives the indefinite value.
    let v = if scaled.is_finite() && scaled.abs() < 9.2e18 {
        scaled.round_ties_even() as i64
    } else {
        i64::MIN
    };
    let neg = v < 0;
    let mag = v.unsigned_abs();
    let digits = mag.to_string();
    let (int, frac) = if digits.len() > 4 {
        digits.split_at(digits.len() - 4)
    } else {
        ("", digits.as_str())
    };
    format!(
        "{}{}.{:0>4}",
        if neg { "-" } else { "" },
        if int.is_empty() { "0" } else { int },
        frac
    )
}

/// A coordinate as Redis replies with it (`addReplyHumanLongDouble`: `%.17Lf` of the double,
/// trailing zeroes and point dropped, `-0` as `0`).
pub fn format_coord(x: f64) -> String {
    let mut s = format!("{x:.17}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores, positions, hashes and distances as redis-server 7.0.15 gives them
    /// (`GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania`, then ZSCORE,
    /// GEOPOS, GEOHASH, GEODIST).
    #[test]
    fn palermo_and_catania_as_redis() {
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3479447370796909));
        let (lon, lat) = decode_score(3479099956230698.0).unwrap();
        assert_eq!(format_coord(lon), "13.36138933897018433");
        assert_eq!(format_coord(lat), "38.11555639549629859");
        let (lon2, lat2) = decode_score(3479447370796909.0).unwrap();
        assert_eq!(format_coord(lon2), "15.08726745843887329");
        assert_eq!(format_coord(lat2), "37.50266842333162032");
        assert_eq!(&geohash_string(lon, lat).unwrap(), b"sqc8b49rny0");
        let d = distance(lon, lat, lon2, lat2);
        assert_eq!(format_distance(d / 1000.0), "166.2742");
        // GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km: 56.4413 and 190.4424 km.
        assert_eq!(
            format_distance(distance(15.0, 37.0, lon2, lat2) / 1000.0),
            "56.4413"
        );
        assert_eq!(
            format_distance(distance(15.0, 37.0, lon, lat) / 1000.0),
            "190.4424"
        );
    }

    /// Random points and the edges, as redis-server 7.0.15 stores and reports them: ZSCORE,
    /// GEOPOS, GEOHASH, and GEODIST ... km from the point before.
    #[test]
    fn points_as_redis() {
        #[rustfmt::skip]
        let redis: &[(f64, f64, u64, &str, &str, &str, &str)] = &[
            (44.24461, 41.127967, 3518127494573638, "44.24461215734481812", "41.12796603508194693", "szr3yz1gy00", "-"),
            (106.269684, 75.260793, 4319676799258257, "106.26968175172805786", "75.26079238190430942", "ym7s4hz1zh0", "4832.5993"),
            (86.363487, 71.837482, 3922106643038164, "86.36348515748977661", "71.83748162989938635", "vuv2tjxgxj0", "728.2811"),
            (-169.558118, -5.847586, 373777487270110, "-169.55812007188796997", "-5.84758523890742055", "2nzqtx7x370", "11113.4919"),
            (159.608418, 25.340571, 4188464639258802, "159.60841745138168335", "25.34057189131262788", "xs92pvp7980", "4810.3007"),
            (144.324177, -65.793665, 2981385177647568, "144.3241766095161438", "-65.79366461563884627", "phq9sntsj50", "10220.0826"),
            (-11.135143, -43.107961, 841470921579848, "-11.13514512777328491", "-43.10796093397841133", "7b24f87tum0", "7724.9356"),
            (15.753909, 12.577396, 3405075401596263, "15.75390905141830444", "12.57739665301030385", "s65pw3xsss0", "6771.0271"),
            (-175.278892, -48.184261, 90106215511228, "-175.27889102697372437", "-48.1842622081134806", "0p7mgkmf3f0", "15930.5068"),
            (-79.386348, 70.820348, 2048304717290836, "-79.38634604215621948", "70.82034872307984585", "fhxdcs2wkj0", "15192.0015"),
            (95.661163, -57.901323, 2891737450690402, "95.66116422414779663", "-57.90132361957441987", "njsn8g6k6d0", "18565.3375"),
            (106.972917, -61.445662, 2896474965684467, "106.97291940450668335", "-61.44566223749546197", "nmh46npm1d0", "746.1653"),
            (180.0, 85.05112878, 13510798882111488, "180", "85.0511287799999991", "bp05b5048p0", "16646.2461"),
            (-180.0, -85.05112878, 0, "-179.99999731779098511", "-85.05112751263942528", "00bh0hbj200", "18919.8446"),
            (0.0, 0.0, 3377699720527872, "0.00000268220901489", "0.00000126736058093", "s0000000000", "10560.8119"),
        ];
        let mut prev: Option<(f64, f64)> = None;
        for &(lon, lat, score, x, y, hash, dist) in redis {
            assert_eq!(score_of(lon, lat), Some(score), "{lon},{lat}");
            let (px, py) = decode_score(score as f64).unwrap();
            assert_eq!(
                (format_coord(px).as_str(), format_coord(py).as_str()),
                (x, y)
            );
            assert_eq!(&geohash_string(px, py).unwrap(), hash.as_bytes());
            if let Some((qx, qy)) = prev {
                assert_eq!(format_distance(distance(px, py, qx, qy) / 1000.0), dist);
            }
            prev = Some((px, py));
        }
    }

    #[test]
    fn neighbours_are_the_adjacent_cells() {
        for step in [3u8, 10, 26] {
            let hash = encode_wgs84(15.0, 37.0, step).unwrap();
            let a = decode_wgs84(hash).unwrap();
            let n = neighbors(hash);
            let cell = |h| decode_wgs84(h).unwrap();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
            assert!(close(cell(n.east).longitude.min, a.longitude.max));
            assert!(close(cell(n.west).longitude.max, a.longitude.min));
            assert!(close(cell(n.north).latitude.min, a.latitude.max));
            assert!(close(cell(n.south).latitude.max, a.latitude.min));
            assert_eq!(cell(n.north).longitude, a.longitude);
            assert_eq!(cell(n.east).latitude, a.latitude);
            let ne = cell(n.north_east);
            assert!(
                close(ne.longitude.min, a.longitude.max) && close(ne.latitude.min, a.latitude.max)
            );
            let sw = cell(n.south_west);
            assert!(
                close(sw.longitude.max, a.longitude.min) && close(sw.latitude.max, a.latitude.min)
            );
        }
    }

    /// Scores no GEOADD makes, decoded as redis-server 7.0.15 decodes them (`ZADD wz -1 a
    /// 1e20 b ...`, then GEOPOS): C's cast wraps or saturates, and the position is clamped.
    #[test]
    fn foreign_scores_as_redis() {
        let ne = ("180", "85.0511287799999991");
        let sw = ("-179.99999731779098511", "-85.05112751263942528");
        let cases = [
            (-1.0, ne),
            (1e20, sw),
            (0.5, sw),
            (
                4503599627370496.0,
                ("-179.99999731779098511", "85.0511287799999991"),
            ),
            (-1e300, ("180", "-85.05112751263942528")),
            (18446744073709551616.0, sw),
            (9.3e18, ne),
        ];
        for (score, (x, y)) in cases {
            let (lon, lat) = decode_score(score).unwrap();
            assert_eq!(
                (format_coord(lon).as_str(), format_coord(lat).as_str()),
                (x, y),
                "{score}"
            );
        }
    }

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            let sep = deinterleave64(interleave64(x, y));
            assert_eq!((sep as u32, (sep >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn limits_and_units() {
        assert_eq!(score_of(180.1, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
        assert!(score_of(180.0, 85.05112878).is_some());
        assert_eq!(unit_meters(b"KM"), Some(1000.0));
        assert_eq!(unit_meters(b"mi"), Some(1609.34));
        assert_eq!(unit_meters(b"yd"), None);
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(0.00005), "0.0000");
        assert_eq!(format_distance(12.3), "12.3000");
        assert_eq!(format_coord(-0.0), "0");
        assert_eq!(format_coord(1.5), "1.5");
        assert_eq!(format_coord(2.0), "2");
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
    }

    #[test]
    fn search_ranges_hold_the_centre() {
        let shape = Shape {
            center: (15.0, 37.0),
            conversion: 1000.0,
            kind: ShapeKind::Radius(200.0),
        };
        let ranges = shape.search_ranges();
        assert!(!ranges.is_empty() && ranges.len() <= 9);
        for p in [3479099956230698u64, 3479447370796909] {
            assert!(ranges.iter().any(|&(lo, hi)| lo <= p && p < hi));
        }
    }
}
