//! RESP3 on a connection: HELLO's switch under a password, the protocol as CLIENT LIST shows it,
//! RESET going back to RESP2, a switch in the middle of a pipelined batch, and a transaction's
//! replies in RESP3, each compared with a real redis-server where the bytes do not carry ids.
mod common;

use common::{show, Raw, RealRedis, Rudis};
use rudis::resp::Frame;

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// The reply's bytes with the client id of a HELLO reply (`id` then `:<n>`) blanked out.
fn without_id(reply: &[u8]) -> String {
    let text = show(reply);
    match text.find("$2\\r\\nid\\r\\n:") {
        Some(at) => {
            let start = at + "$2\\r\\nid\\r\\n:".len();
            let end = start + text[start..].find('\\').unwrap_or(0);
            format!("{}N{}", &text[..start], &text[end..])
        }
        None => text,
    }
}

fn same_replies(redis: &mut Raw, rudis: &mut Raw, lines: &[&str]) {
    for line in lines {
        let want = without_id(&redis.cmd(&words(line)));
        let got = without_id(&rudis.cmd(&words(line)));
        assert_eq!(got, want, "{line}");
    }
}

#[test]
fn hello_under_a_password_switches_only_once_authenticated() {
    let redis = RealRedis::start(&["--requirepass", "pw"]);
    let rudis = Rudis::start(&["--requirepass", "pw"]);
    let (mut a, mut b) = (redis.raw(), rudis.raw());
    same_replies(
        &mut a,
        &mut b,
        &[
            "HELLO 3",
            // Still RESP2: a failed HELLO switches nothing.
            "GET x",
            "HELLO 3 AUTH default nope",
            "HELLO 3 SETNAME early AUTH default nope",
            "HELLO 3 AUTH nobody pw",
            "HELLO 3 AUTH default",
            "HELLO 3 AUTH default pw SETNAME named",
            "GET x",
            "CLIENT GETNAME",
            "HGETALL x",
            "HELLO",
            "HELLO 2",
            "GET x",
            "HELLO 3",
            "RESET",
            "HELLO 3",
            "AUTH pw",
            "GET x",
            "HELLO 3",
            "GET x",
            "RESET",
            "GET x",
        ],
    );
}

#[test]
fn client_list_shows_each_connection_protocol() {
    let rudis = Rudis::start(&[]);
    let (mut two, mut three) = (rudis.raw(), rudis.raw());
    let Frame::Integer(id3) = three.frame(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID")
    };
    three.cmd(&["HELLO", "3"]);
    let Frame::Bulk(list) = two.frame(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST in RESP2 is a bulk string")
    };
    let list = String::from_utf8(list).unwrap();
    for line in list.lines() {
        let want = if line.starts_with(&format!("id={id3} ")) {
            " resp=3 "
        } else {
            " resp=2 "
        };
        assert!(line.contains(want), "{line}");
    }
    let Frame::Verbatim(format, info) = three.frame(&["CLIENT", "INFO"]) else {
        panic!("CLIENT INFO in RESP3 is verbatim text")
    };
    assert_eq!(format, "txt");
    assert!(String::from_utf8(info).unwrap().contains(" resp=3 "));
    three.cmd(&["RESET"]);
    let Frame::Bulk(info) = three.frame(&["CLIENT", "INFO"]) else {
        panic!("RESP2 after RESET")
    };
    assert!(String::from_utf8(info).unwrap().contains(" resp=2 "));
}

/// HELLO in the middle of a pipelined batch: the replies before it are RESP2, the ones after
/// RESP3, as Redis writes them.
#[test]
fn a_switch_inside_a_pipeline_and_a_transaction() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&[]);
    let batch =
        b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n\
                  *2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n\
                  *2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n";
    let mut replies = Vec::new();
    for server in [redis.raw(), rudis.raw()] {
        let mut c = server;
        c.send_raw(batch);
        let got: Vec<String> = (0..5).map(|_| without_id(&c.read_reply())).collect();
        replies.push(got);
    }
    assert_eq!(replies[1], replies[0]);
    assert_eq!(replies[1][3], "_\\r\\n");
    let (mut a, mut b) = (redis.raw(), rudis.raw());
    same_replies(
        &mut a,
        &mut b,
        &[
            "HELLO 3",
            "MULTI",
            "GET missing",
            "HGETALL h",
            "MGET x missing",
            "CONFIG GET timeout",
            "EXEC",
            "WATCH h",
            "HSET h g w",
            "MULTI",
            "HGETALL h",
            "EXEC",
            // A HELLO queued in a transaction switches the replies after it within EXEC's.
            "MULTI",
            "GET missing",
            "HELLO 2",
            "GET missing",
            "HGETALL h",
            "EXEC",
            "GET missing",
        ],
    );
}
