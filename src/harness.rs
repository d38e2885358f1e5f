//! A server without sockets: commands run in-process against a fresh store, as the AOF loader
//! runs them. For tests, benchmarks and fuzzing.

use crate::client::Client;
use crate::commands;
use crate::config::Config;
use crate::resp::ReplyBuf;
use crate::shared::Shared;

pub struct Harness {
    pub shared: Shared,
    pub client: Client,
    pub out: ReplyBuf,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A store without AOF, with the default configuration otherwise.
    pub fn new() -> Harness {
        Harness::with_config(Config::default())
    }

    /// A store without AOF, configured by `config` otherwise.
    pub fn with_config(config: Config) -> Harness {
        let config = Config {
            appendonly: false,
            ..config
        };
        Harness {
            // No AOF writer runs here, so CONFIG SET appendonly yes is refused.
            shared: Shared::new(config),
            client: Client::new(None),
            out: ReplyBuf::new(),
        }
    }

    /// Runs one request and returns its reply (or replies: none for an empty request).
    pub fn run<A: AsRef<[u8]>>(&mut self, argv: &[A]) -> &[u8] {
        self.out.clear();
        if !argv.is_empty() {
            let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_ref()).collect();
            commands::execute(&self.shared, &mut self.client, &argv, &mut self.out);
        }
        self.out.as_bytes()
    }
}

/// A request's arguments.
pub type Request = Vec<Vec<u8>>;

/// Feeds `input` to the request parser in pieces ending at each of `cuts` (then the rest), as
/// a connection reads it, dropping consumed bytes between reads. Returns the requests parsed
/// and the protocol error that stopped parsing, if any.
pub fn parse_in_pieces(
    input: &[u8],
    cuts: impl IntoIterator<Item = usize>,
) -> (Vec<Request>, Option<crate::resp::parse::ProtocolError>) {
    use crate::resp::parse::{Limits, Parsed, RequestParser};
    let mut ends: Vec<usize> = cuts.into_iter().filter(|&c| c < input.len()).collect();
    ends.push(input.len());
    ends.sort_unstable();
    ends.dedup();
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    let mut fed = 0;
    for end in ends {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match parser.parse(&buf) {
                Ok(Parsed::Request { .. }) => requests.push(
                    parser
                        .args()
                        .iter()
                        .map(|a| a.bytes(&buf).to_vec())
                        .collect(),
                ),
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => return (requests, Some(e)),
            }
        }
        let done = parser.request_start();
        buf.drain(..done);
        parser.rebase(done);
    }
    (requests, None)
}
