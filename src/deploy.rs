//! Deploys of a published site, for static hosts: onto a git branch (a commit
//! whose tree is exactly the site's files, as hosts that serve a branch expect)
//! or into a folder (a complete new release, then one rename of a symbolic
//! link, so a server reading the folder sees the old site or the new one, never
//! half of either). The build is the publish's, links checked first, so a site
//! with a broken link deploys nothing. Each deploy is logged per site.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::git::{self, GitError};
use crate::publish::Build;
use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};

/// Releases a folder target keeps (the live one and those before it).
const RELEASES_KEPT: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("`{0}` is not a target: write `git:BRANCH` or `dir:PATH`")]
    BadTarget(String),
    #[error("`{0}` is not a branch name git takes")]
    BadBranch(String),
    #[error(
        "`{0}` is the checked-out branch: a deploy replaces the whole tree, so it goes on a branch of its own (`git:gh-pages`)"
    )]
    CheckedOut(String),
    #[error("the workspace is not a git repository: {0}")]
    NoRepository(String),
    #[error("`{branch}` moved while deploying (another deploy?); nothing changed, run it again")]
    Moved { branch: String },
    #[error(
        "{0} is a folder funnel did not make; a folder deploy swaps a link there. Move it away, or deploy to another path"
    )]
    NotOurs(PathBuf),
    #[error("folder deploys swap a symbolic link, which needs a Unix system")]
    Unsupported,
    #[error("git: {0}")]
    Git(#[from] GitError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a site goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Git { branch: String },
    Dir { path: PathBuf },
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, DeployError> {
        match text.split_once(':') {
            Some(("git", b)) if !b.is_empty() => Ok(Target::Git {
                branch: b.to_string(),
            }),
            Some(("dir", p)) if !p.is_empty() => Ok(Target::Dir {
                path: PathBuf::from(p),
            }),
            _ => Err(DeployError::BadTarget(text.to_string())),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Git { branch } => format!("git:{branch}"),
            Target::Dir { path } => format!("dir:{}", path.display()),
        }
    }
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    pub site: String,
    pub target: String,
    /// The commit (git) or the release folder's name (dir) now live.
    pub revision: String,
    /// False when the target held exactly these files already: nothing new
    /// was written.
    pub changed: bool,
    pub files: usize,
    pub bytes: u64,
}

/// Deploys `build` to `target`. `root` is the workspace (its repository for a
/// branch); `author` signs a commit.
pub fn deploy(
    root: &Path,
    build: &Build,
    target: &Target,
    author: &str,
) -> Result<Deployed, DeployError> {
    let (revision, changed) = match target {
        Target::Git { branch } => to_branch(root, branch, build, author)?,
        Target::Dir { path } => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                root.join(path)
            };
            to_dir(&path, build)?
        }
    };
    Ok(Deployed {
        site: build.site.clone(),
        target: target.describe(),
        revision,
        changed,
        files: build.files.len(),
        bytes: build.files.values().map(|b| b.len() as u64).sum(),
    })
}

/// A name safe inside a commit's author line.
fn ident(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r'))
        .take(200)
        .collect()
}

/// One commit on `branch` holding exactly the build's files, its parent the
/// branch's tip. Written through `git fast-import` onto a scratch ref, then
/// moved onto the branch only if the branch did not move meanwhile; the same
/// files as the tip write nothing.
fn to_branch(
    root: &Path,
    branch: &str,
    build: &Build,
    author: &str,
) -> Result<(String, bool), DeployError> {
    git::run(root, &["check-ref-format", "--branch", branch], &[], None)
        .map_err(|_| DeployError::BadBranch(branch.to_string()))?;
    git::run(root, &["rev-parse", "--git-dir"], &[], None)
        .map_err(|e| DeployError::NoRepository(e.to_string()))?;
    let full = format!("refs/heads/{branch}");
    if let Ok(head) = git::run(root, &["symbolic-ref", "--quiet", "HEAD"], &[], None)
        && head == full
    {
        return Err(DeployError::CheckedOut(branch.to_string()));
    }
    let tip = git::resolve(root, &full)?;
    let now = crate::store::now_ms();
    let scratch = format!("refs/funnel/deploys/{}", crate::uid::new(now));
    let who = ident(author);
    let message = format!(
        "Deploy {} ({} files) by {who}\n",
        build.site,
        build.files.len()
    );
    let mut stream: Vec<u8> = Vec::new();
    let secs = now / 1000;
    stream.extend(format!("commit {scratch}\n").as_bytes());
    stream.extend(format!("author {who} <{who}> {secs} +0000\n").as_bytes());
    stream.extend(format!("committer funnel <funnel@localhost> {secs} +0000\n").as_bytes());
    stream.extend(format!("data {}\n{message}\n", message.len()).as_bytes());
    if let Some(t) = &tip {
        stream.extend(format!("from {t}\n").as_bytes());
    }
    stream.extend(b"deleteall\n");
    for (path, bytes) in &build.files {
        // Paths are the build's own (`pricing/index.html`); fast-import reads
        // an unquoted path to the end of its line.
        if path.contains('\n') || path.starts_with('"') {
            return Err(DeployError::Io {
                path: PathBuf::from(path),
                source: std::io::Error::other("a file name a git tree cannot hold"),
            });
        }
        stream.extend(format!("M 100644 inline {path}\ndata {}\n", bytes.len()).as_bytes());
        stream.extend(bytes);
        stream.push(b'\n');
    }
    stream.extend(b"done\n");
    git::run(
        root,
        &["fast-import", "--quiet", "--done", "--date-format=raw"],
        &[],
        Some(&stream),
    )?;
    let made = git::run(root, &["rev-parse", &scratch], &[], None)?;
    let result = (|| {
        if let Some(t) = &tip {
            let old = git::run(root, &["rev-parse", &format!("{t}^{{tree}}")], &[], None)?;
            let new = git::run(root, &["rev-parse", &format!("{made}^{{tree}}")], &[], None)?;
            if old == new {
                return Ok((t.clone(), false));
            }
        }
        let expected = tip.clone().unwrap_or_default();
        git::run(root, &["update-ref", &full, &made, &expected], &[], None).map_err(|_| {
            DeployError::Moved {
                branch: branch.to_string(),
            }
        })?;
        Ok((made.clone(), true))
    })();
    let _ = git::run(root, &["update-ref", "-d", &scratch], &[], None);
    result
}

/// The folder of releases beside a folder target: `.NAME.releases/`.
fn releases_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "site".into());
    path.with_file_name(format!(".{name}.releases"))
}

/// A digest of the files and their bytes: a release's name ends with it, so
/// the same build again is known without reading the live files.
fn digest(build: &Build) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in &build.files {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(unix)]
fn to_dir(path: &Path, build: &Build) -> Result<(String, bool), DeployError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| DeployError::Io { path: p, source }
    };
    let releases = releases_of(path);
    let live = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(path).ok(),
        Ok(_) => return Err(DeployError::NotOurs(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(path)(e)),
    };
    let sum = digest(build);
    if let Some(name) = live
        .as_ref()
        .and_then(|l| l.file_name())
        .map(|n| n.to_string_lossy().to_string())
        && name.ends_with(&sum)
        && releases.join(&name).is_dir()
    {
        return Ok((name, false));
    }
    // A complete release first, each file synced, then the folder.
    let now = crate::store::now_ms();
    let name = format!("{}-{sum}", jiff_stamp(now));
    let dir = releases.join(&name);
    let partial = releases.join(format!(".partial-{name}"));
    std::fs::create_dir_all(&partial).map_err(io(&partial))?;
    for (rel, bytes) in &build.files {
        let file = partial.join(rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        write_synced(&file, bytes).map_err(io(&file))?;
    }
    std::fs::rename(&partial, &dir).map_err(io(&dir))?;
    // The release's name is durable before the link points at it.
    if let Ok(d) = std::fs::File::open(&releases) {
        let _ = d.sync_all();
    }
    // Then the switch: a new link beside the old, renamed over it in one step.
    let rel_target = Path::new(
        releases
            .file_name()
            .ok_or_else(|| DeployError::NotOurs(path.to_path_buf()))?,
    )
    .join(&name);
    let link = path.with_file_name(format!(
        ".{}.link-{name}",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&rel_target, &link).map_err(io(&link))?;
    std::fs::rename(&link, path).map_err(io(path))?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    prune(&releases, &name);
    Ok((name, true))
}

#[cfg(not(unix))]
fn to_dir(_path: &Path, _build: &Build) -> Result<(String, bool), DeployError> {
    Err(DeployError::Unsupported)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// `20261205T041233123Z`: release names sort by time.
fn jiff_stamp(ms: UnixMs) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y%m%dT%H%M%S%3fZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Removes all but the newest releases (the live one always stays) and any
/// partial release a crash left.
fn prune(releases: &Path, live: &str) {
    let Ok(entries) = std::fs::read_dir(releases) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let (partial, done): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| n.starts_with(".partial-"));
    // A partial release is a crashed deploy's, or one still being written by
    // another deploy: only an old one is removed.
    let stale = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(600))
    };
    for p in partial {
        let p = releases.join(p);
        if stale(&p) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    let old = done.len().saturating_sub(RELEASES_KEPT);
    for n in done.into_iter().take(old) {
        if n != live {
            let _ = std::fs::remove_dir_all(releases.join(n));
        }
    }
}

/// One line of a site's deploy log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub site: String,
    pub target: String,
    pub revision: String,
    pub changed: bool,
    pub files: i64,
    pub bytes: i64,
    pub actor: String,
    pub deployed_at: UnixMs,
}

/// Records a deploy in its site's log.
pub fn record(db: Db<'_>, d: &Deployed, actor: &str, at: UnixMs) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO deploys (site, target, revision, changed, files, bytes, actor, deployed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        d.site,
        d.target,
        d.revision,
        i64::from(d.changed),
        i64::try_from(d.files).unwrap_or(i64::MAX),
        i64::try_from(d.bytes).unwrap_or(i64::MAX),
        actor,
        at
    ])?;
    Ok(())
}

/// A site's deploys, newest first.
pub fn log(db: Db<'_>, site: &str, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT site, target, revision, changed, files, bytes, actor, deployed_at FROM deploys \
         WHERE site = ?1 ORDER BY deployed_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![site, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(LogEntry {
                site: r.get(0)?,
                target: r.get(1)?,
                revision: r.get(2)?,
                changed: r.get::<i64>(3)? != 0,
                files: r.get(4)?,
                bytes: r.get(5)?,
                actor: r.get(6)?,
                deployed_at: r.get(7)?,
            })
        },
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_or_say_how_to_write_them() {
        assert_eq!(
            Target::parse("git:gh-pages").expect("git"),
            Target::Git {
                branch: "gh-pages".into()
            }
        );
        assert_eq!(
            Target::parse("dir:/srv/www").expect("dir"),
            Target::Dir {
                path: "/srv/www".into()
            }
        );
        for bad in ["gh-pages", "git:", "s3:bucket", "dir:"] {
            let e = Target::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("git:BRANCH"), "{e}");
        }
    }

    #[test]
    fn a_digest_changes_with_any_byte_or_name() {
        let mut b = Build::default();
        b.files.insert("index.html".into(), b"<h1>a</h1>".to_vec());
        let one = digest(&b);
        b.files.insert("index.html".into(), b"<h1>b</h1>".to_vec());
        assert_ne!(one, digest(&b));
        let mut c = Build::default();
        c.files.insert("index.htm".into(), b"l<h1>b</h1>".to_vec());
        assert_ne!(digest(&b), digest(&c));
    }
}
