//! Who may do what through the daemon's API: tokens with a role (`viewer` reads,
//! `editor` also writes contacts and proposes changes, `owner` also approves and
//! manages tokens). A token's secret is random, shown once when it is made, and
//! stored only as its SHA-256 hash (the secret has 256 bits of entropy, so a
//! plain hash is enough: there is nothing to guess).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

/// What a token may do; each role includes the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    Hash,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("a token named `{0}` exists already (revoke it first)")]
    NameTaken(String),
    #[error("no token named `{0}`")]
    NoSuchToken(String),
    #[error("a token's name is 1 to 64 letters, digits, `-`, `_`, `.` or `@`: `{0}`")]
    BadName(String),
    #[error("no random bytes from the system: {0}")]
    Random(String),
    #[error("`{0}` is not an email address")]
    BadEmail(String),
    #[error("a person's name is 1 to 200 characters")]
    BadUserName,
    #[error("{0} is a user already")]
    UserTaken(String),
    #[error("no user {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The prefix every secret starts with, so a leaked one is recognisable (secret
/// scanners match on it).
pub const SECRET_PREFIX: &str = "funnel_";

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub name: String,
    pub role: Role,
    /// The secret's first characters, to tell tokens apart.
    pub prefix: String,
    pub created_by: String,
    pub created_at: UnixMs,
    pub revoked_at: Option<UnixMs>,
}

/// Who a request's token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    pub role: Role,
    /// The person the token belongs to (their email), for a user's token.
    pub person: Option<String>,
}

impl Principal {
    /// Who the audit log names: the person, else the token.
    pub fn actor(&self) -> String {
        match &self.person {
            Some(email) => email.clone(),
            None => format!("token:{}", self.name),
        }
    }
}

/// A token as stored, with its user's email and role when it is a user's.
type TokenRow = (String, String, Option<i64>, Option<String>, Option<String>);

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Makes a token; returns its secret, which is not stored and cannot be shown
/// again.
pub fn create(
    db: Db<'_>,
    name: &str,
    role: Role,
    created_by: &str,
    now: UnixMs,
) -> Result<String, AccessError> {
    create_for(db, name, role, None, created_by, now)
}

/// Makes a token for a user (`user`: their id), or a service's token (`None`).
fn create_for(
    db: Db<'_>,
    name: &str,
    role: Role,
    user: Option<i64>,
    created_by: &str,
    now: UnixMs,
) -> Result<String, AccessError> {
    if !valid_name(name) {
        return Err(AccessError::BadName(name.chars().take(80).collect()));
    }
    let taken: bool = db
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL)",
        )?
        .query_row(params![name], |r| r.get(0))?;
    if taken {
        return Err(AccessError::NameTaken(name.to_string()));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| AccessError::Random(e.to_string()))?;
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(raw));
    let prefix: String = secret.chars().take(SECRET_PREFIX.len() + 6).collect();
    db.prepare_cached(
        "INSERT INTO api_tokens (name, role, token_hash, prefix, created_by, created_at, user_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        name,
        role.as_str(),
        hash(&secret),
        prefix,
        created_by,
        now,
        user
    ])?;
    Ok(secret)
}

/// Every token, newest first; revoked ones too when `all`.
pub fn list(db: Db<'_>, all: bool) -> Result<Vec<Token>, AccessError> {
    let mut stmt = db.prepare_cached(
        "SELECT name, role, prefix, created_by, created_at, revoked_at FROM api_tokens \
         WHERE ?1 OR revoked_at IS NULL ORDER BY created_at DESC, id DESC",
    )?;
    let rows = stmt.query_map(params![all], |r| {
        let role: String = r.get(1)?;
        Ok(Token {
            name: r.get(0)?,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            prefix: r.get(2)?,
            created_by: r.get(3)?,
            created_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes the live token named `name`: from now on it opens nothing.
pub fn revoke(db: Db<'_>, name: &str, now: UnixMs) -> Result<(), AccessError> {
    let n = db
        .prepare_cached(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![name, now])?;
    if n == 0 {
        return Err(AccessError::NoSuchToken(name.to_string()));
    }
    Ok(())
}

/// The live token whose secret is `presented`, if any.
pub fn authenticate(db: Db<'_>, presented: &str) -> Result<Option<Principal>, AccessError> {
    if !presented.starts_with(SECRET_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    // A user's token speaks with the user's current role, and for no one once
    // the user is removed.
    let found: Option<TokenRow> = db
        .prepare_cached(
            "SELECT t.name, t.role, t.user_id, u.email, u.role FROM api_tokens t \
             LEFT JOIN users u ON u.id = t.user_id AND u.removed_at IS NULL \
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
        )?
        .query_row(params![hash(presented)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    Ok(found.and_then(
        |(name, role, user, email, user_role)| match (user, email, user_role) {
            (None, _, _) => Some(Principal {
                name,
                role: Role::parse(&role)?,
                person: None,
            }),
            (Some(_), Some(email), Some(r)) => Some(Principal {
                name,
                role: Role::parse(&r)?,
                person: Some(email),
            }),
            _ => None,
        },
    ))
}

/// A person who works in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: UnixMs,
    /// Their tokens that open the API now.
    pub tokens: i64,
}

/// Adds a person, with a first token named after their email; returns the
/// token's secret (shown once).
pub fn add_user(
    db: Db<'_>,
    email: &str,
    name: &str,
    role: Role,
    created_by: &str,
    now: UnixMs,
) -> Result<String, AccessError> {
    let email = email.trim().to_lowercase();
    if email.len() > 254 || !crate::validate::values::is_email(&email) {
        return Err(AccessError::BadEmail(email.chars().take(80).collect()));
    }
    let taken: bool = db
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1 AND removed_at IS NULL)",
        )?
        .query_row(params![email], |r| r.get(0))?;
    if taken {
        return Err(AccessError::UserTaken(email));
    }
    // The first token is named after the address when a token name can be
    // (letters, digits, `-_.@`, 64 at most), else after the part before `@`.
    let token_name = if valid_name(&email) {
        email.clone()
    } else {
        let local: String = email
            .split('@')
            .next()
            .unwrap_or("user")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(40)
            .collect();
        format!("user-{local}-{}", now.rem_euclid(1_000_000))
    };
    // Checked before anything is written, so a refusal leaves nothing behind.
    let token_taken: bool = db
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL)",
        )?
        .query_row(params![token_name], |r| r.get(0))?;
    if token_taken {
        return Err(AccessError::NameTaken(token_name));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AccessError::BadUserName);
    }
    db.prepare_cached(
        "INSERT INTO users (email, name, role, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![email, name, role.as_str(), created_by, now])?;
    let id = user_id(db, &email)?.ok_or_else(|| AccessError::NoSuchUser(email.clone()))?;
    create_for(db, &token_name, role, Some(id), created_by, now)
}

fn user_id(db: Db<'_>, email: &str) -> Result<Option<i64>, AccessError> {
    Ok(db
        .prepare_cached("SELECT id FROM users WHERE email = ?1 AND removed_at IS NULL")?
        .query_row(params![email.trim().to_lowercase()], |r| r.get(0))
        .optional()?)
}

/// Another token for a user (a second laptop, a script of theirs).
pub fn add_user_token(
    db: Db<'_>,
    email: &str,
    token_name: &str,
    created_by: &str,
    now: UnixMs,
) -> Result<String, AccessError> {
    let id = user_id(db, email)?.ok_or_else(|| AccessError::NoSuchUser(email.to_string()))?;
    let role: String = db
        .prepare_cached("SELECT role FROM users WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    create_for(
        db,
        token_name,
        Role::parse(&role).unwrap_or(Role::Viewer),
        Some(id),
        created_by,
        now,
    )
}

/// The people of the workspace, by email.
pub fn users(db: Db<'_>) -> Result<Vec<User>, AccessError> {
    let mut stmt = db.prepare_cached(
        "SELECT u.email, u.name, u.role, u.created_by, u.created_at, \
         (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) \
         FROM users u WHERE u.removed_at IS NULL ORDER BY u.email",
    )?;
    let rows = stmt.query_map(params![], |r| {
        let role: String = r.get(2)?;
        Ok(User {
            email: r.get(0)?,
            name: r.get(1)?,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            created_by: r.get(3)?,
            created_at: r.get(4)?,
            tokens: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes a person and revokes every token of theirs.
pub fn remove_user(db: Db<'_>, email: &str, now: UnixMs) -> Result<(), AccessError> {
    let id = user_id(db, email)?.ok_or_else(|| AccessError::NoSuchUser(email.to_string()))?;
    db.prepare_cached(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, now])?;
    db.prepare_cached("UPDATE users SET removed_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    #[test]
    fn a_users_tokens_speak_for_them_with_their_role_until_they_are_removed() {
        let store = TestDb::open();
        let db = store.db();
        let first = add_user(db, "Mira@Example.org", "Mira", Role::Editor, "olaf", 1).expect("add");
        let second = add_user_token(db, "mira@example.org", "laptop", "olaf", 2).expect("token");
        for secret in [&first, &second] {
            let p = authenticate(db, secret).expect("auth").expect("opens");
            assert_eq!(p.role, Role::Editor);
            assert_eq!(p.actor(), "mira@example.org");
        }
        assert!(matches!(
            add_user(db, "mira@example.org", "Again", Role::Viewer, "olaf", 3),
            Err(AccessError::UserTaken(_))
        ));
        assert!(matches!(
            add_user(db, "not an email", "X", Role::Viewer, "olaf", 3),
            Err(AccessError::BadEmail(_))
        ));
        let plus = add_user(db, "ann+work@example.org", "Ann", Role::Viewer, "olaf", 3)
            .expect("a + address");
        assert_eq!(
            authenticate(db, &plus)
                .expect("auth")
                .and_then(|p| p.person)
                .as_deref(),
            Some("ann+work@example.org")
        );
        assert_eq!(users(db).expect("users")[1].tokens, 2);
        remove_user(db, "mira@example.org", 4).expect("remove");
        assert_eq!(authenticate(db, &first).expect("auth"), None);
        assert_eq!(authenticate(db, &second).expect("auth"), None);
        assert_eq!(users(db).expect("users").len(), 1);
    }

    #[test]
    fn tokens_open_by_their_secret_until_revoked() {
        let store = TestDb::open();
        let db = store.db();
        let secret = create(db, "ci", Role::Editor, "ada@example.org", 1).expect("create");
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() == SECRET_PREFIX.len() + 64);
        assert_eq!(
            authenticate(db, &secret).expect("auth"),
            Some(Principal {
                name: "ci".into(),
                role: Role::Editor,
                person: None,
            })
        );
        assert_eq!(authenticate(db, "funnel_00").expect("auth"), None);
        assert_eq!(authenticate(db, "Bearer x").expect("auth"), None);
        assert!(matches!(
            create(db, "ci", Role::Owner, "x", 2),
            Err(AccessError::NameTaken(_))
        ));
        assert!(matches!(
            create(db, "bad name", Role::Owner, "x", 2),
            Err(AccessError::BadName(_))
        ));
        let stored: String = db
            .query_row("SELECT token_hash FROM api_tokens", params![], |r| r.get(0))
            .expect("row");
        assert!(
            !stored.contains(&secret[SECRET_PREFIX.len()..]),
            "only a hash is kept"
        );
        revoke(db, "ci", 3).expect("revoke");
        assert_eq!(authenticate(db, &secret).expect("auth"), None);
        assert!(matches!(
            revoke(db, "ci", 4),
            Err(AccessError::NoSuchToken(_))
        ));
        // The name is free again; the list shows live tokens unless asked for all.
        create(db, "ci", Role::Viewer, "x", 5).expect("again");
        assert_eq!(list(db, false).expect("list").len(), 1);
        assert_eq!(list(db, true).expect("list").len(), 2);
        assert!(Role::Owner > Role::Editor && Role::Editor > Role::Viewer);
    }
}
