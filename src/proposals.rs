//! Proposals: changes to workspace files made through the API, with git as the
//! source of truth. A proposal is validated against the workspace as it would be
//! with the change (in a scratch copy), then committed on a branch
//! `funnel/proposals/<id>` of the workspace's repository with git's own plumbing
//! (a private index, `commit-tree`, `update-ref`): the working tree and the
//! checked-out branch are never touched. An owner's approval merges the branch
//! with `git merge`, which updates the working tree as any merge does; the
//! daemon's watcher then picks the change up like any other edit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;

use crate::diagnostic::{Diagnostic, Severity};
use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("{0}")]
    BadPath(String),
    #[error("a comment is 1 to 10,000 bytes of text, at most 500 on a proposal")]
    BadComment,
    #[error("the change does not validate ({} error(s))", .0.len())]
    Invalid(Vec<Diagnostic>),
    #[error("the workspace is not a git repository with a commit: {0}")]
    NoRepository(String),
    #[error("git: {0}")]
    Git(String),
    #[error("no proposal `{0}`")]
    NotFound(String),
    #[error("proposal `{0}` is {1}, not open")]
    NotOpen(String, String),
    #[error("the proposal does not merge cleanly: {0}")]
    Conflict(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The folders (and the one file) a proposal may change.
const CHANGEABLE: [&str; 5] = [
    "workflows/",
    "sites/",
    "templates/",
    "contacts/",
    "campaigns/",
];

/// At most this many files, and bytes per file, in one proposal.
pub const MAX_FILES: usize = 50;
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// A stored proposal.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub id: String,
    pub title: String,
    pub author: String,
    pub branch: String,
    pub commit: String,
    /// `open`, `merged` or `rejected`.
    pub status: String,
    pub files: Vec<String>,
    pub created_at: UnixMs,
    pub decided_by: Option<String>,
    pub decided_at: Option<UnixMs>,
}

/// Checks a proposal's file path: relative, inside a changeable folder (or
/// `funnel.yaml`), no `..`, no hidden parts.
pub fn check_path(path: &str) -> Result<(), ProposalError> {
    let ok = !path.is_empty()
        && path.len() <= 200
        && (path == crate::workspace::CONFIG_FILE
            || CHANGEABLE.iter().any(|c| path.starts_with(c)))
        && path.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(ProposalError::BadPath(format!(
            "`{}`: a proposal changes files under workflows/, sites/, templates/, contacts/ or campaigns/, or funnel.yaml (letters, digits, `-`, `_`, `.`)",
            path.chars().take(200).collect::<String>()
        )))
    }
}

fn git(
    root: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> Result<String, ProposalError> {
    crate::git::run(root, args, env, input).map_err(|e| ProposalError::Git(e.to_string()))
}

/// Validates the workspace at `root` as it would be with `files` (a path to its
/// new content, or `None` to delete it), in a scratch copy of its workspace
/// files. Returns the errors, if any.
pub fn validate_with(
    root: &Path,
    files: &BTreeMap<String, Option<String>>,
) -> Result<Vec<Diagnostic>, ProposalError> {
    let scratch = tempdir()?;
    for part in ["workflows", "sites", "templates", "contacts"] {
        let from = root.join(part);
        if from.is_dir() {
            copy_tree(&from, &scratch.0.join(part))?;
        }
    }
    let config = root.join(crate::workspace::CONFIG_FILE);
    if config.is_file() {
        std::fs::copy(&config, scratch.0.join(crate::workspace::CONFIG_FILE))?;
        // Files funnel.yaml names (`*_file`: a CA, a signing certificate, a
        // key) are checked for existence: the copy needs them too.
        for rel in named_files(&std::fs::read_to_string(&config).unwrap_or_default()) {
            let from = root.join(&rel);
            if from.is_file() {
                let to = scratch.0.join(&rel);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&from, &to)?;
            }
        }
    }
    for (path, content) in files {
        let target = scratch.0.join(path);
        match content {
            Some(text) => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, text)?;
            }
            None => {
                let _ = std::fs::remove_file(&target);
            }
        }
    }
    let report = crate::validate::validate_workspace(&scratch.0, Path::new("."))
        .map_err(|e| ProposalError::Git(format!("cannot load the changed workspace: {e}")))?;
    Ok(report
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect())
}

/// The workspace-relative paths funnel.yaml gives under keys ending in
/// `_file`; absolute paths and paths leaving the workspace are left out.
fn named_files(config: &str) -> Vec<PathBuf> {
    fn walk(v: &serde_json::Value, out: &mut Vec<PathBuf>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some(path) if k.ends_with("_file") => {
                            let p = Path::new(path);
                            if p.is_relative()
                                && p.components()
                                    .all(|c| matches!(c, std::path::Component::Normal(_)))
                            {
                                out.push(p.to_path_buf());
                            }
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(root) = crate::yaml::parse(config).root {
        walk(&root.to_json(), &mut out);
    }
    out
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<Scratch, ProposalError> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| ProposalError::Git(e.to_string()))?;
    let dir = std::env::temp_dir().join(format!("funnel-proposal-{}", hex::encode(raw)));
    std::fs::create_dir_all(&dir)?;
    Ok(Scratch(dir))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Commits `files` on a new branch `funnel/proposals/<id>` from the checked-out
/// branch's head, without touching the working tree or the index. Returns the
/// branch and the commit.
pub fn commit_branch(
    root: &Path,
    id: &str,
    title: &str,
    author: &str,
    files: &BTreeMap<String, Option<String>>,
) -> Result<(String, String), ProposalError> {
    let head = git(root, &["rev-parse", "--verify", "HEAD"], &[], None)
        .map_err(|e| ProposalError::NoRepository(e.to_string()))?;
    let scratch = tempdir()?;
    let index = scratch.0.join("index");
    let index_text = index.to_string_lossy().to_string();
    let env = [
        ("GIT_INDEX_FILE", index_text.as_str()),
        ("GIT_AUTHOR_NAME", author),
        ("GIT_AUTHOR_EMAIL", author),
        ("GIT_COMMITTER_NAME", "funnel"),
        ("GIT_COMMITTER_EMAIL", "funnel@localhost"),
    ];
    git(root, &["read-tree", &head], &env, None)?;
    for (path, content) in files {
        match content {
            Some(text) => {
                let blob = git(
                    root,
                    &["hash-object", "-w", "--stdin"],
                    &env,
                    Some(text.as_bytes()),
                )?;
                git(
                    root,
                    &[
                        "update-index",
                        "--add",
                        "--cacheinfo",
                        &format!("100644,{blob},{path}"),
                    ],
                    &env,
                    None,
                )?;
            }
            None => {
                git(root, &["update-index", "--force-remove", path], &env, None)?;
            }
        }
    }
    let tree = git(root, &["write-tree"], &env, None)?;
    let message =
        format!("{title}\n\nProposed through the funnel API by {author} (proposal {id}).");
    let commit = git(
        root,
        &["commit-tree", &tree, "-p", &head, "-F", "-"],
        &env,
        Some(message.as_bytes()),
    )?;
    let branch = format!("funnel/proposals/{id}");
    git(
        root,
        &["update-ref", &format!("refs/heads/{branch}"), &commit, ""],
        &env,
        None,
    )?;
    Ok((branch, commit))
}

/// Merges a proposal's branch into the checked-out branch (`git merge --no-ff`),
/// which updates the working tree. A merge that does not apply cleanly is
/// aborted and nothing changes.
pub fn merge_branch(root: &Path, branch: &str, approver: &str) -> Result<String, ProposalError> {
    let env = [
        ("GIT_AUTHOR_NAME", approver),
        ("GIT_AUTHOR_EMAIL", approver),
        ("GIT_COMMITTER_NAME", "funnel"),
        ("GIT_COMMITTER_EMAIL", "funnel@localhost"),
    ];
    let message = format!("Merge {branch}, approved by {approver}");
    match git(
        root,
        &["merge", "--no-ff", "--no-edit", "-m", &message, branch],
        &env,
        None,
    ) {
        Ok(_) => git(root, &["rev-parse", "HEAD"], &[], None),
        Err(e) => {
            let _ = git(root, &["merge", "--abort"], &[], None);
            Err(ProposalError::Conflict(e.to_string()))
        }
    }
}

/// Stores a new open proposal.
pub fn record(db: Db<'_>, p: &Proposal, contents: &Json) -> Result<(), ProposalError> {
    db.prepare_cached(
        "INSERT INTO proposals (uid, title, author, branch, commit_id, status, files, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)",
    )?
    .execute(params![
        p.id,
        p.title,
        p.author,
        p.branch,
        p.commit,
        serde_json::json!({"paths": p.files, "changes": contents}),
        p.created_at
    ])?;
    Ok(())
}

const COLUMNS: &str =
    "uid, title, author, branch, commit_id, status, files, created_at, decided_by, decided_at";

fn row(r: crate::store::db::Row<'_>) -> Result<Proposal, StoreError> {
    let files: Json = r.get(6)?;
    Ok(Proposal {
        id: r.get(0)?,
        title: r.get(1)?,
        author: r.get(2)?,
        branch: r.get(3)?,
        commit: r.get(4)?,
        status: r.get(5)?,
        files: files["paths"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        created_at: r.get(7)?,
        decided_by: r.get(8)?,
        decided_at: r.get(9)?,
    })
}

/// One proposal.
pub fn get(db: Db<'_>, id: &str) -> Result<Proposal, ProposalError> {
    db.prepare_cached(&format!("SELECT {COLUMNS} FROM proposals WHERE uid = ?1"))?
        .query_row(params![id], row)
        .optional()?
        .ok_or_else(|| ProposalError::NotFound(id.chars().take(100).collect()))
}

/// The newest proposals, open ones only unless `all`.
pub fn list(db: Db<'_>, all: bool, limit: usize) -> Result<Vec<Proposal>, ProposalError> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM proposals WHERE ?1 OR status = 'open' ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![all, i64::try_from(limit).unwrap_or(i64::MAX)], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records an open proposal's decision (`merged` or `rejected`); refuses one
/// decided already.
pub fn decide(
    db: Db<'_>,
    id: &str,
    status: &str,
    by: &str,
    at: UnixMs,
) -> Result<(), ProposalError> {
    let n = db
        .prepare_cached(
            "UPDATE proposals SET status = ?2, decided_by = ?3, decided_at = ?4 \
             WHERE uid = ?1 AND status = 'open'",
        )?
        .execute(params![id, status, by, at])?;
    if n == 0 {
        let p = get(db, id)?;
        return Err(ProposalError::NotOpen(p.id, p.status));
    }
    Ok(())
}

/// Comments a proposal takes at most (each show lists them all).
const MAX_COMMENTS: i64 = 500;

/// A comment on a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub author: String,
    pub body: String,
    pub created_at: UnixMs,
}

/// Adds a comment to a proposal (open or decided: a review goes on after).
pub fn comment(
    db: Db<'_>,
    id: &str,
    author: &str,
    body: &str,
    at: UnixMs,
) -> Result<Comment, ProposalError> {
    let body = body.trim();
    if body.is_empty() || body.len() > 10_000 {
        return Err(ProposalError::BadComment);
    }
    let internal: i64 = db
        .prepare_cached("SELECT id FROM proposals WHERE uid = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ProposalError::NotFound(id.to_string()))?;
    let n: i64 = db
        .prepare_cached("SELECT count(*) FROM proposal_comments WHERE proposal_id = ?1")?
        .query_row(params![internal], |r| r.get(0))?;
    if n >= MAX_COMMENTS {
        return Err(ProposalError::BadComment);
    }
    db.prepare_cached(
        "INSERT INTO proposal_comments (proposal_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![internal, author, body, at])?;
    Ok(Comment {
        author: author.to_string(),
        body: body.to_string(),
        created_at: at,
    })
}

/// A proposal's comments, oldest first.
pub fn comments(db: Db<'_>, id: &str) -> Result<Vec<Comment>, ProposalError> {
    let mut stmt = db.prepare_cached(
        "SELECT c.author, c.body, c.created_at FROM proposal_comments c \
         JOIN proposals p ON p.id = c.proposal_id WHERE p.uid = ?1 ORDER BY c.id",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok(Comment {
            author: r.get(0)?,
            body: r.get(1)?,
            created_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_change_workspace_files_only() {
        for ok in [
            "workflows/new.yaml",
            "sites/demo/site.yaml",
            "funnel.yaml",
            "templates/emails/x.yaml",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "../etc/passwd",
            "workflows/../../x",
            "/etc/passwd",
            ".git/config",
            "workflows/.hidden.yaml",
            "src/main.rs",
            "workflows//x.yaml",
            "workflows/a b.yaml",
            "",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
