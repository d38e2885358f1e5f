//! rudis: a Redis-compatible key-value server on threads and `std::net`.

pub mod aof;
pub mod client;
pub mod clients;
pub mod commands;
pub mod config;
pub mod connection;
pub mod fdlimit;
pub mod glob;
pub mod harness;
pub mod ldouble;
pub mod pool;
pub mod resp;
pub mod server;
pub mod shared;
pub mod stats;
pub mod store;
pub mod watch;
