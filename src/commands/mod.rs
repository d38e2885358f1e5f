//! Commands: the spec of each (`spec`), the table that finds them (`table`), the dispatcher
//! that checks and runs them (`dispatch`), and the handlers, one file per data type or server
//! area, each with its own `COMMANDS` list.
//!
//! The table is data: each command's arity, flags and key positions live in a `CommandSpec`, and
//! the dispatcher uses them for arity and unknown-command errors, for the locks a command needs,
//! and for AOF propagation. Handlers hold only the command's own logic.

#[macro_use]
pub mod spec;

pub mod args;
pub mod ctx;
pub mod dispatch;
pub mod error;
pub mod table;

pub mod acl;
pub mod bitmap;
pub mod client;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod debug;
pub mod docs;
pub mod dump;
pub mod expire;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod info;
pub mod introspection;
pub mod keys;
pub mod list;
pub mod list_blocking;
pub mod lolwut;
pub mod memory;
pub mod module;
pub mod object;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod script;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod string;
pub mod tracking;
pub mod transaction;
pub mod zset;

pub use args::Args;
pub use ctx::Ctx;
pub(crate) use dispatch::call;
pub use dispatch::{dispatch_sub, execute, help, plan, run};
pub use error::CommandError;
pub use spec::{flags, CommandSpec, Handler, KeyDbs, KeyDbsFn, Keys, ALL_KEYS, KEY1};
pub use table::{all, lookup};
