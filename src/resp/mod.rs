//! RESP, the Redis serialization protocol: the request parser the server reads with, the
//! reply writer it answers with, and a `Frame` value type for tests, tools and the AOF.

pub mod frame;
pub mod inbuf;
pub mod parse;
pub mod reply;

pub use frame::Frame;
pub use inbuf::InBuf;
pub use parse::{Limits, ProtocolError, RequestParser};
pub use reply::ReplyBuf;
