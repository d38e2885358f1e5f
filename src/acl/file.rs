//! Users from outside the server: `user` lines in redis.conf and the ACL file (`aclfile`,
//! ACL LOAD / ACL SAVE), checked and worded as Redis 7.0's acl.c does, so that a file written
//! by either server loads in the other and a broken one is refused with the same report.

use std::sync::Arc;

use super::{merge_selectors, Acl, RuleError, User};

/// A `user` line's rules, tried on a scratch user as Redis's ACLAppendUserForLoading tries
/// them while it reads the config file. `words` is the line after `user`: the name, then the
/// rules. An unknown command is let through here (Redis reports it only when the users are
/// created, see [`Acl::load_config_users`]). Err is the reason redis.conf's report gives.
pub fn check_user_line(words: &[String]) -> Result<(), String> {
    let merged = merge_selectors(&words[1..]).map_err(|at| {
        format!(
            "Error in user declaration '{}': Unmatched parenthesis in acl selector starting at \
             '{at}'.",
            words[0]
        )
    })?;
    let mut scratch = User::new(&words[0]);
    for (j, op) in merged.iter().enumerate() {
        match scratch.apply(op) {
            Ok(()) | Err(RuleError::Unknown) => {}
            // Redis names argv[j] of the whole line (`user`, the name, ...), not the rule
            // itself: its index runs over the rules but reads the line; kept for the same
            // report.
            Err(e) => {
                let named = match j {
                    0 => "user",
                    _ => words.get(j - 1).map_or("", String::as_str),
                };
                return Err(format!("Error in user declaration '{named}': {e}"));
            }
        }
    }
    Ok(())
}

impl Acl {
    /// Start-up: the users of redis.conf's `user` lines, or those of the ACL file, never
    /// both (Redis's ACLLoadUsersAtStartup); Err is the line Redis logs before exiting.
    pub fn load_at_start(&self, lines: &[Vec<String>], aclfile: &str) -> Result<(), String> {
        if !aclfile.is_empty() && !lines.is_empty() {
            return Err(
                "Configuring Redis with users defined in redis.conf and at the same \
                        setting an ACL file path is invalid. This setup is very likely to lead \
                        to configuration errors and security holes, please define either an \
                        ACL file or declare users directly in your redis.conf, but not both."
                    .into(),
            );
        }
        self.load_config_users(lines)?;
        if !aclfile.is_empty() {
            self.load_file(aclfile)
                .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        }
        Ok(())
    }

    /// redis.conf's users, already checked by [`check_user_line`]: a `user default` line
    /// starts from `reset` (Redis's ACLLoadConfiguredUsers).
    fn load_config_users(&self, lines: &[Vec<String>]) -> Result<(), String> {
        for words in lines {
            let name = &words[0];
            if super::has_spaces(name.as_bytes()) {
                return Err("Spaces not allowed in ACL usernames".into());
            }
            let mut u = if name == "default" {
                let mut d = (*self.default_user()).clone();
                let _ = d.apply("reset");
                d
            } else {
                User::new(name)
            };
            let merged = merge_selectors(&words[1..]).unwrap_or_default();
            for op in &merged {
                u.apply(op).map_err(|e| {
                    log::warn!("Error loading ACL rule '{op}' for the user named '{name}': {e}");
                    "Critical error while loading ACLs. Exiting.".to_string()
                })?;
            }
            if !u.enabled {
                log::info!(
                    "The user '{name}' is disabled (there is no 'on' modifier in the user \
                     description). Make sure this is not a configuration error."
                );
            }
            self.replace_user(u);
        }
        Ok(())
    }

    /// ACL LOAD: every line must hold, or nothing changes (Redis's ACLLoadFromFile, whose
    /// one-line report of every problem this returns). On success the users are replaced; the
    /// default user, missing from the file, is recreated with every permission.
    pub fn load_file(&self, path: &str) -> Result<(), String> {
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "Error loading ACLs, opening file '{path}': {}",
                crate::util::strerror(&e)
            )
        })?;
        let text = String::from_utf8_lossy(&text);
        let mut errors = String::new();
        let mut users: std::collections::BTreeMap<String, Arc<User>> = Default::default();
        for (i, line) in text.split('\n').enumerate() {
            let n = i + 1;
            let line = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() {
                continue;
            }
            // Redis splits on every single space, as its own ACL SAVE writes.
            let argv: Vec<&str> = line.split(' ').collect();
            if argv[0] != "user" || argv.len() < 2 {
                errors.push_str(&format!(
                    "{path}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let name = argv[1];
            if super::has_spaces(name.as_bytes()) {
                errors.push_str(&format!(
                    "'{path}:{n}: username '{name}' contains invalid characters. "
                ));
                continue;
            }
            if users.contains_key(name) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{name}' found on line {n}. "
                ));
                continue;
            }
            let rules: Vec<String> = argv[2..].iter().map(|s| s.to_string()).collect();
            let Ok(merged) = merge_selectors(&rules) else {
                errors.push_str(&format!(
                    "{path}:{n}: Unmatched parenthesis in selector definition."
                ));
                continue;
            };
            let mut u = User::new(name);
            let mut syntax_error = false;
            for op in &merged {
                let op = op.trim_matches(|c| matches!(c, '\t' | '\r' | '\n'));
                match u.apply(op) {
                    Ok(()) => {}
                    // A missing command names itself: it is no secret, unlike a password.
                    Err(e @ RuleError::Unknown) => errors.push_str(&format!(
                        "{path}:{n}: Error in applying operation '{op}': {e}. "
                    )),
                    Err(e) if !syntax_error => {
                        errors.push_str(&format!("{path}:{n}: {e}. "));
                        syntax_error = true;
                    }
                    Err(_) => {}
                }
            }
            u.seal();
            users.insert(name.to_string(), Arc::new(u));
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules \
                 was performed",
            );
            return Err(errors);
        }
        users
            .entry("default".into())
            .or_insert_with(|| Arc::new(User::default_user()));
        self.replace_all(users);
        Ok(())
    }

    /// ACL SAVE: every user as ACL LIST describes it, written to a temporary file renamed
    /// over the old one, so a crash leaves the old file or the new one, never half of one.
    pub fn save_file(&self, path: &str) -> std::io::Result<()> {
        let mut text = String::new();
        for u in self.users() {
            text.push_str(&format!("user {} {}\n", u.name, u.describe()));
        }
        let tmp = format!(
            "{path}.tmp-{}-{}",
            std::process::id(),
            crate::util::clock::now_ms()
        );
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_user_line_is_checked_as_redis_reads_it() {
        assert_eq!(check_user_line(&words("alice on >pw ~a:* +get")), Ok(()));
        // An unknown command passes here and fails when the user is created.
        assert_eq!(check_user_line(&words("alice on +nosuch")), Ok(()));
        assert_eq!(
            check_user_line(&words("alice on badrule")),
            Err("Error in user declaration 'alice': Syntax error".into())
        );
        let acl = Acl::default();
        assert!(acl.load_config_users(&[words("alice on +nosuch")]).is_err());
        acl.load_config_users(&[words("alice on >pw ~a:* +get")])
            .unwrap();
        assert!(acl.authenticate(b"alice", b"pw").is_some());
    }

    #[test]
    fn the_acl_file_loads_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.acl");
        let path = path.to_str().unwrap();
        std::fs::write(
            path,
            "user alice on\nfoo\nuser alice off\nuser d on +nosuch ~a\n",
        )
        .unwrap();
        let acl = Acl::default();
        let err = acl.load_file(path).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{path}:2 should start with user keyword followed by the username. WARNING: \
                 Duplicate user 'alice' found on line 3. {path}:4: Error in applying operation \
                 '+nosuch': Unknown command or category name in ACL. WARNING: ACL errors \
                 detected, no change to the previously active ACL rules was performed"
            )
        );
        assert!(acl.get("alice").is_none());
        acl.set_user("bob", &words("on >pw ~b:* +@read")).unwrap();
        acl.save_file(path).unwrap();
        let saved = std::fs::read_to_string(path).unwrap();
        let other = Acl::default();
        other.load_file(path).unwrap();
        let bob = |a: &Acl| a.get("bob").unwrap().describe();
        assert_eq!(bob(&acl), bob(&other));
        other.save_file(path).unwrap();
        assert_eq!(saved, std::fs::read_to_string(path).unwrap());
    }
}
