//! Geo commands (Redis's geo.c) on sorted sets whose scores are 52-bit geohashes (the
//! arithmetic is `store::geo`): GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE,
//! GEORADIUS, GEORADIUSBYMEMBER and the _RO forms.

use std::cmp::Ordering;

use super::flags::*;
use super::sort::pqsort;
use super::{args, CommandError, CommandSpec, Ctx, Keys, KEY1};
use crate::notify::events::class::{GENERIC, ZSET};
use crate::store::geo::{self, Shape, ShapeKind};
use crate::store::{Value, ZSet};

/// GEORADIUS and GEORADIUSBYMEMBER may STORE into a key named among their options: that
/// locks the whole database, as SORT ... STORE does.
const RADIUS_KEYS: Keys = Keys::Parsed {
    range: (1, 1, 1),
    whole_db: |argv| store_key(argv).is_some(),
    more_key: store_key,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("geoadd", -5, WRITE | DENYOOM, KEY1, geoadd),
    cmd!("geopos", -2, READONLY, KEY1, geopos),
    cmd!("geodist", -4, READONLY, KEY1, geodist),
    cmd!("geohash", -2, READONLY, KEY1, geohash),
    cmd!("geosearch", -7, READONLY, KEY1, geosearch),
    cmd!(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        Keys::Range {
            first: 1,
            last: 2,
            step: 1
        },
        geosearchstore
    ),
    cmd!(
        "georadius",
        -6,
        WRITE | DENYOOM | MOVABLEKEYS,
        RADIUS_KEYS,
        georadius
    ),
    cmd!("georadius_ro", -6, READONLY, KEY1, georadius_ro),
    cmd!(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM | MOVABLEKEYS,
        RADIUS_KEYS,
        georadiusbymember
    ),
    cmd!(
        "georadiusbymember_ro",
        -5,
        READONLY,
        KEY1,
        georadiusbymember_ro
    ),
];

/// The STORE / STOREDIST destination of GEORADIUS[BYMEMBER], the last one given, looked for
/// from argument 5 on (Redis's `georadiusGetKeys`).
fn store_key(argv: &[&[u8]]) -> Option<usize> {
    let mut found = None;
    let mut i = 5;
    while i < argv.len() {
        let a = argv[i];
        if (a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist"))
            && i + 1 < argv.len()
        {
            found = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    found
}

/// A double as Redis's `string2d` reads an argument: all of it, no leading space, no NaN, no
/// overflow; `msg` is the error (Redis's default: "value is not a valid float").
fn double(arg: &[u8], msg: Option<&str>) -> Result<f64, CommandError> {
    let bad = || match msg {
        Some(m) => CommandError::Err(m.into()),
        None => CommandError::NotFloat,
    };
    // C's isspace: \v too, which Rust's is_ascii_whitespace leaves out.
    if arg.is_empty() || b" \t\n\x0b\x0c\r".contains(&arg[0]) || arg.contains(&0) {
        return Err(bad());
    }
    super::sort::score(arg).ok_or_else(bad)
}

/// A longitude and a latitude, within the limits (Redis's `extractLongLatOrReply`).
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CommandError> {
    let (x, y) = (double(lon, None)?, double(lat, None)?);
    if !(geo::LONG_MIN..=geo::LONG_MAX).contains(&x) || !(geo::LAT_MIN..=geo::LAT_MAX).contains(&y)
    {
        return Err(CommandError::Err(format!(
            "invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok((x, y))
}

fn unit(arg: &[u8]) -> Result<f64, CommandError> {
    geo::unit_meters(arg).ok_or_else(|| {
        CommandError::Err("unsupported unit provided. please use M, KM, FT, MI".into())
    })
}

/// `<radius> <unit>`: (radius, the unit's meters).
fn radius(argv: &[&[u8]]) -> Result<(f64, f64), CommandError> {
    let r = double(argv[0], Some("need numeric radius"))?;
    if r < 0.0 {
        return Err(CommandError::Err("radius cannot be negative".into()));
    }
    Ok((r, unit(argv[1])?))
}

/// `<width> <height> <unit>`: (width, height, the unit's meters).
fn box_size(argv: &[&[u8]]) -> Result<(f64, f64, f64), CommandError> {
    let w = double(argv[0], Some("need numeric width"))?;
    let h = double(argv[1], Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CommandError::Err(
            "height or width cannot be negative".into(),
        ));
    }
    Ok((w, h, unit(argv[2])?))
}

fn member_pos(z: &ZSet, member: &[u8]) -> Result<(f64, f64), CommandError> {
    z.score(member)
        .and_then(geo::decode_score)
        .ok_or_else(|| CommandError::Err("could not decode requested zset member".into()))
}

/// GEOADD key [NX|XX] [CH] longitude latitude member ...: a ZADD of the positions' scores, and
/// logged as that ZADD, as Redis does.
fn geoadd(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut first = 2;
    while first < argv.len() {
        let opt = argv[first];
        if opt.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if opt.eq_ignore_ascii_case(b"ch") {
            ch = true;
        } else {
            break;
        }
        first += 1;
    }
    if !(argv.len() - first).is_multiple_of(3) || (xx && nx) {
        return Err(CommandError::Syntax);
    }
    let mut items: Vec<(u64, &[u8])> = Vec::with_capacity((argv.len() - first) / 3);
    for t in argv[first..].chunks(3) {
        let (lon, lat) = lon_lat(t[0], t[1])?;
        let score = geo::score_of(lon, lat).expect("checked to be within the limits");
        items.push((score, t[2]));
    }
    // ZADD's own check, on the command GEOADD hands it.
    if items.is_empty() {
        return Err(CommandError::Syntax);
    }
    // Changes nothing: no key created, nothing signalled to WATCH, nothing logged.
    let changes = |z: Option<&ZSet>| {
        items
            .iter()
            .any(|&(s, m)| match z.and_then(|z| z.score(m)) {
                Some(cur) => !nx && cur != s as f64,
                None => !xx,
            })
    };
    if !changes(ctx.ks.get_zset(key)?) {
        ctx.out.int(0);
        return Ok(());
    }
    let z = ctx.ks.zset_or_new(key, ZSet::default)?;
    let (mut added, mut updated) = (0i64, 0i64);
    for &(score, member) in &items {
        let score = score as f64;
        match z.score(member) {
            Some(cur) if !nx && cur != score => {
                z.insert(member, score);
                updated += 1;
            }
            None if !xx => {
                z.insert(member, score);
                added += 1;
            }
            _ => {}
        }
    }
    ctx.dirty((added + updated) as u64);
    // GEOADD is ZADD in Redis: the same event.
    if added + updated > 0 {
        ctx.notify(ZSET, "zadd", key);
    }
    let scores: Vec<String> = items.iter().map(|(s, _)| s.to_string()).collect();
    // In lower case, as Redis's geoaddCommand writes it.
    let mut logged: Vec<&[u8]> = vec![b"zadd"];
    logged.extend_from_slice(&argv[1..first]);
    for ((_, member), score) in items.iter().zip(&scores) {
        logged.push(score.as_bytes());
        logged.push(member);
    }
    ctx.propagate(&logged);
    ctx.out.int(if ch { added + updated } else { added });
    Ok(())
}

/// A coordinate pair as Redis replies with it.
fn reply_coords(ctx: &mut Ctx, lon: f64, lat: f64) {
    ctx.out.array(2);
    ctx.out.double_text(geo::format_coord(lon).as_bytes());
    ctx.out.double_text(geo::format_coord(lat).as_bytes());
}

fn geopos(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let z = ctx.ks.get_zset(argv[1])?;
    let found: Vec<Option<(f64, f64)>> = argv[2..]
        .iter()
        .map(|m| z.and_then(|z| z.score(m)).and_then(geo::decode_score))
        .collect();
    ctx.out.array(found.len());
    for pos in found {
        match pos {
            Some((lon, lat)) => reply_coords(ctx, lon, lat),
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

fn geohash(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let z = ctx.ks.get_zset(argv[1])?;
    let found: Vec<Option<[u8; 11]>> = argv[2..]
        .iter()
        .map(|m| {
            let (lon, lat) = geo::decode_score(z?.score(m)?)?;
            geo::geohash_string(lon, lat)
        })
        .collect();
    ctx.out.array(found.len());
    for h in found {
        match h {
            Some(h) => ctx.out.bulk(&h),
            None => ctx.out.null_bulk(),
        }
    }
    Ok(())
}

fn geodist(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let to_meters = match argv.len() {
        5 => unit(argv[4])?,
        4 => 1.0,
        _ => return Err(CommandError::Syntax),
    };
    let Some(z) = ctx.ks.get_zset(argv[1])? else {
        ctx.out.null_bulk();
        return Ok(());
    };
    let pos = |m| z.score(m).and_then(geo::decode_score);
    match (pos(argv[2]), pos(argv[3])) {
        (Some((x1, y1)), Some((x2, y2))) => {
            let d = geo::distance(x1, y1, x2, y2) / to_meters;
            ctx.out.bulk(geo::format_distance(d).as_bytes());
        }
        _ => ctx.out.null_bulk(),
    }
    Ok(())
}

/// Which command of the family runs (Redis's flags to `georadiusGeneric`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS[_RO]: centre and radius are arguments 2-5.
    Coords { store: bool },
    /// GEORADIUSBYMEMBER[_RO]: member, radius and unit are arguments 2-4.
    Member { store: bool },
    /// GEOSEARCH: FROM... and BY... options.
    Search,
    /// GEOSEARCHSTORE: the same with a destination first.
    SearchStore,
}

impl Form {
    fn src(self) -> usize {
        if self == Form::SearchStore {
            2
        } else {
            1
        }
    }

    fn may_store(self) -> bool {
        matches!(
            self,
            Form::Coords { store: true } | Form::Member { store: true }
        )
    }

    fn is_search(self) -> bool {
        matches!(self, Form::Search | Form::SearchStore)
    }
}

fn georadius(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    search(ctx, argv, Form::Coords { store: true })
}

fn georadius_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    search(ctx, argv, Form::Coords { store: false })
}

fn georadiusbymember(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    search(ctx, argv, Form::Member { store: true })
}

fn georadiusbymember_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    search(ctx, argv, Form::Member { store: false })
}

fn geosearch(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    search(ctx, argv, Form::Search)
}

fn geosearchstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    search(ctx, argv, Form::SearchStore)
}

/// One match: member, position, distance from the centre (meters, then the unit), score.
struct Point {
    member: Vec<u8>,
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
}

#[derive(Default)]
struct SearchOpts<'a> {
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    any: bool,
    /// None, or Some(true) for ASC, Some(false) for DESC.
    asc: Option<bool>,
    count: i64,
    store: Option<&'a [u8]>,
    storedist: bool,
    center: Option<(f64, f64)>,
    frommember: bool,
    fromloc: bool,
    kind: Option<(ShapeKind, f64)>,
}

/// Redis's `georadiusGeneric`, its checks in its order.
fn search(ctx: &mut Ctx, argv: &[&[u8]], form: Form) -> Result<(), CommandError> {
    let src = argv[form.src()];
    let z = ctx.ks.get_zset(src)?;
    let mut o = SearchOpts::default();
    let base = match form {
        Form::Coords { .. } => {
            o.center = Some(lon_lat(argv[2], argv[3])?);
            let (r, conv) = radius(&argv[4..6])?;
            o.kind = Some((ShapeKind::Radius(r), conv));
            6
        }
        Form::Member { .. } => {
            // Without the key, the options are still read (the reply depends on STORE).
            if let Some(z) = z {
                o.center = Some(member_pos(z, argv[2])?);
                let (r, conv) = radius(&argv[3..5])?;
                o.kind = Some((ShapeKind::Radius(r), conv));
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => {
            o.store = Some(argv[1]);
            3
        }
    };
    let rest = &argv[base..];
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i];
        let left = rest.len() - i - 1;
        let is = |w: &str| arg.eq_ignore_ascii_case(w.as_bytes());
        if is("withdist") {
            o.withdist = true;
        } else if is("withhash") {
            o.withhash = true;
        } else if is("withcoord") {
            o.withcoord = true;
        } else if is("any") {
            o.any = true;
        } else if is("asc") {
            o.asc = Some(true);
        } else if is("desc") {
            o.asc = Some(false);
        } else if is("count") && left >= 1 {
            o.count = args::int(rest[i + 1])?;
            if o.count <= 0 {
                return Err(CommandError::Err("COUNT must be > 0".into()));
            }
            i += 1;
        } else if (is("store") || is("storedist")) && left >= 1 && form.may_store() {
            o.store = Some(rest[i + 1]);
            o.storedist = is("storedist");
            i += 1;
        } else if is("storedist") && form == Form::SearchStore {
            o.storedist = true;
        } else if is("frommember") && left >= 1 && form.is_search() && !o.fromloc {
            if let Some(z) = z {
                o.center = Some(member_pos(z, rest[i + 1])?);
            }
            o.frommember = true;
            i += 1;
        } else if is("fromlonlat") && left >= 2 && form.is_search() && !o.frommember {
            o.center = Some(lon_lat(rest[i + 1], rest[i + 2])?);
            o.fromloc = true;
            i += 2;
        } else if is("byradius")
            && left >= 2
            && form.is_search()
            && !matches!(o.kind, Some((ShapeKind::Box { .. }, _)))
        {
            let (r, conv) = radius(&rest[i + 1..i + 3])?;
            o.kind = Some((ShapeKind::Radius(r), conv));
            i += 2;
        } else if is("bybox")
            && left >= 3
            && form.is_search()
            && !matches!(o.kind, Some((ShapeKind::Radius(_), _)))
        {
            let (width, height, conv) = box_size(&rest[i + 1..i + 4])?;
            o.kind = Some((ShapeKind::Box { width, height }, conv));
            i += 3;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if o.store.is_some() && (o.withdist || o.withhash || o.withcoord) {
        let what = if form == Form::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CommandError::Err(format!(
            "{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(argv[0]);
    if form.is_search() && !(o.frommember || o.fromloc) {
        return Err(CommandError::Err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if form.is_search() && o.kind.is_none() {
        return Err(CommandError::Err(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if o.any && o.count == 0 {
        return Err(CommandError::Err(
            "the ANY argument requires COUNT argument".into(),
        ));
    }
    let (Some(z), Some(center), Some((kind, conversion))) = (z, o.center, o.kind) else {
        // No source key: the destination is deleted, or the reply is empty.
        match o.store {
            Some(dest) => {
                if ctx.ks.remove(dest).is_some() {
                    ctx.dirty(1);
                }
                ctx.out.int(0);
            }
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    // COUNT needs an order to pick the nearest; ANY takes the first found.
    if o.count != 0 && o.asc.is_none() && !o.any {
        o.asc = Some(true);
    }
    let shape = Shape {
        center,
        conversion,
        kind,
    };
    let limit = if o.any { o.count as usize } else { 0 };
    let mut found = points_in(z, &shape, limit);
    if found.is_empty() && o.store.is_none() {
        ctx.out.array(0);
        return Ok(());
    }
    let returned = if o.count == 0 {
        found.len()
    } else {
        found.len().min(o.count as usize)
    };
    if let Some(asc) = o.asc {
        let cmp = |a: &Point, b: &Point| {
            let ord = a.dist.partial_cmp(&b.dist).unwrap_or(Ordering::Equal);
            if asc {
                ord
            } else {
                ord.reverse()
            }
        };
        // As Redis: qsort (a stable merge sort in glibc) for all, its own partial quicksort
        // when COUNT cuts the result (equal distances then come out in its order).
        if returned == found.len() {
            found.sort_by(cmp);
        } else {
            pqsort(&mut found, &cmp, 0, returned);
        }
    }
    found.truncate(returned);
    for p in &mut found {
        p.dist /= conversion;
    }
    match o.store {
        None => reply_points(ctx, &found, &o),
        Some(dest) => {
            let event = if argv[0].eq_ignore_ascii_case(b"geosearchstore") {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            store_points(ctx, dest, found, o.storedist, event)
        }
    }
    Ok(())
}

/// The members within `shape`, cell by cell in Redis's order; with a `limit` (ANY), stops
/// once that many are found.
fn points_in(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let mut found = Vec::new();
    for (min, max) in shape.search_ranges() {
        if limit > 0 && found.len() >= limit {
            break;
        }
        let (min, max) = (min as f64, max as f64);
        let start = z.count_while(|(_, s)| s < min);
        for (member, score) in z.range(start, z.len()) {
            if score >= max {
                break;
            }
            if let Some((lon, lat)) = geo::decode_score(score) {
                if let Some(dist) = shape.contains(lon, lat) {
                    found.push(Point {
                        member: member.to_vec(),
                        lon,
                        lat,
                        dist,
                        score,
                    });
                }
            }
            if limit > 0 && found.len() >= limit {
                break;
            }
        }
    }
    found
}

fn reply_points(ctx: &mut Ctx, found: &[Point], o: &SearchOpts) {
    let extras = o.withdist as usize + o.withhash as usize + o.withcoord as usize;
    ctx.out.array(found.len());
    for p in found {
        if extras > 0 {
            ctx.out.array(extras + 1);
        }
        ctx.out.bulk(&p.member);
        if o.withdist {
            ctx.out.bulk(geo::format_distance(p.dist).as_bytes());
        }
        if o.withhash {
            ctx.out.int(p.score as i64);
        }
        if o.withcoord {
            reply_coords(ctx, p.lon, p.lat);
        }
    }
}

/// STORE / STOREDIST / GEOSEARCHSTORE: the matches as a sorted set under `dest` (scored by
/// geohash, or by distance in the unit), replacing it; none deletes it.
fn store_points(ctx: &mut Ctx, dest: &[u8], found: Vec<Point>, storedist: bool, event: &str) {
    let n = found.len();
    if n == 0 {
        if ctx.ks.remove(dest).is_some() {
            ctx.dirty(1);
            ctx.notify(GENERIC, "del", dest);
        }
    } else {
        let mut z = ZSet::default();
        for p in &found {
            z.insert(&p.member, if storedist { p.dist } else { p.score });
        }
        ctx.ks.set(dest, Value::ZSet(Box::new(z)));
        ctx.dirty(n as u64);
        ctx.notify(ZSET, event, dest);
    }
    ctx.out.int(n as i64);
}
