//! Redis Cluster's commands, as a Redis started without `cluster-enabled` answers them (rudis
//! has no cluster mode): each refuses, but only after the gates a real command passes, so that
//! a script calling CLUSTER RESET gets Redis's "not allowed from script" and a wrong subcommand
//! or arity gets Redis's own error, and COMMAND, ACL and redis-cli's hints know them.

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("cluster", -2, 0, Keys::None, super::dispatch_sub).container(CLUSTER_SUBCOMMANDS, &[]),
    cmd!("asking", 1, FAST, Keys::None, disabled),
    cmd!("readonly", 1, LOADING | STALE | FAST, Keys::None, disabled),
    cmd!("readwrite", 1, LOADING | STALE | FAST, Keys::None, disabled),
];

/// Arities and flags as Redis 7.0.15's table (CLUSTER HELP too refuses when disabled).
static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!(
        "cluster|addslots",
        -3,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|addslotsrange",
        -4,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|bumpepoch",
        2,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|count-failure-reports",
        3,
        ADMIN | STALE,
        Keys::None,
        disabled
    ),
    cmd!("cluster|countkeysinslot", 3, STALE, Keys::None, disabled),
    cmd!(
        "cluster|delslots",
        -3,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|delslotsrange",
        -4,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|failover",
        -2,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|flushslots",
        2,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|forget",
        3,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!("cluster|getkeysinslot", 4, STALE, Keys::None, disabled),
    cmd!("cluster|help", 2, LOADING | STALE, Keys::None, disabled),
    cmd!("cluster|info", 2, STALE, Keys::None, disabled),
    cmd!("cluster|keyslot", 3, STALE, Keys::None, disabled),
    cmd!("cluster|links", 2, STALE, Keys::None, disabled),
    cmd!(
        "cluster|meet",
        -4,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!("cluster|myid", 2, STALE, Keys::None, disabled),
    cmd!("cluster|nodes", 2, STALE, Keys::None, disabled),
    cmd!("cluster|replicas", 3, ADMIN | STALE, Keys::None, disabled),
    cmd!(
        "cluster|replicate",
        3,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|reset",
        -2,
        ADMIN | NOSCRIPT | STALE,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|saveconfig",
        2,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|set-config-epoch",
        3,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!(
        "cluster|setslot",
        -4,
        ADMIN | STALE | NO_ASYNC_LOADING,
        Keys::None,
        disabled
    ),
    cmd!("cluster|shards", 2, STALE, Keys::None, disabled),
    cmd!("cluster|slaves", 3, ADMIN | STALE, Keys::None, disabled),
    cmd!("cluster|slots", 2, STALE, Keys::None, disabled),
];

/// Redis's clusterCommand (and READONLY's, READWRITE's, ASKING's) when cluster mode is off.
fn disabled(_ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    Err(CommandError::Err(
        "This instance has cluster support disabled".into(),
    ))
}
