//! rudis: a Redis-compatible key-value server on threads and `std::net`.

pub mod acl;
pub mod aof;
pub mod blocking;
pub mod client;
pub mod clients;
pub mod commands;
pub mod config;
pub mod connection;
pub mod dump;
pub mod evict;
pub mod expiry;
pub mod fdlimit;
pub mod harness;
pub mod listen;
pub mod loading;
pub mod notify;
pub mod ops;
pub mod persist;
pub mod pool;
pub mod rdb;
pub mod repl;
pub mod resp;
pub mod scripts;
pub mod server;
pub mod shared;
pub mod stats;
pub mod store;
pub mod tls;
pub mod util;
pub mod watch;

/// Every allocation is counted, for `maxmemory` and INFO's `used_memory` (see `util::alloc`).
#[global_allocator]
static ALLOCATOR: util::alloc::Counting = util::alloc::Counting;
