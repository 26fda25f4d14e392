//! Git plumbing in the workspace's repository, run as `git` processes: the
//! commands that write commits on branches without touching the working tree
//! or the index (proposals, deploys). Nothing here checks out or merges.

use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// git ran and failed: its own words (the first 500 characters).
    #[error("{0}")]
    Failed(String),
}

/// Runs `git ARGS` in `root` with `env`, feeding `input` on stdin; its
/// trimmed stdout, or its stderr as the error. Never prompts.
pub fn run(
    root: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> Result<String, GitError> {
    use std::io::Write as _;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(root)
        .envs(env.iter().copied())
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(GitError::Spawn)?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        // A git that stopped reading has failed; its stderr says why.
        let _ = stdin.write_all(data);
    }
    let out = child.wait_with_output().map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed(
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(500)
                .collect(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit a ref points at, if it exists.
pub fn resolve(root: &Path, name: &str) -> Result<Option<String>, GitError> {
    match run(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{name}^{{commit}}"),
        ],
        &[],
        None,
    ) {
        Ok(sha) if !sha.is_empty() => Ok(Some(sha)),
        Ok(_) => Ok(None),
        // `--quiet` fails silently for a ref that is not there.
        Err(GitError::Failed(m)) if m.is_empty() => Ok(None),
        Err(e) => Err(e),
    }
}
