//! Running the binary and building workspaces in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn funnel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_funnel"));
    cmd.env("NO_COLOR", "1").env_remove("FUNNEL_LOG");
    cmd
}

/// The binary, pointed at the store of the workspace at `root` (see `backend`).
pub fn funnel_for(root: &Path) -> Command {
    let mut cmd = funnel();
    super::backend::apply(&mut cmd, root);
    cmd
}

pub fn run(args: &[&str], cwd: &Path) -> Output {
    funnel_for(&super::backend::workspace_of(cwd, args))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the funnel binary runs")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create target folder");
    for entry in std::fs::read_dir(from)
        .expect("read fixture folder")
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Every file below `dir`, relative to it.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read folder").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("below dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The diagnostics of `funnel validate --format json` in `dir`, with the exit code.
pub fn validate_json(dir: &Path) -> (i32, Vec<serde_json::Value>) {
    let out = run(&["validate", "--format", "json"], dir);
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout);
    let diags: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "validate printed no JSON ({e}); stdout: {text}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, diags)
}

/// The seed of a randomized crash test: `FUNNEL_CRASH_SEED`, else the clock. Printed,
/// so a failing run can be replayed.
pub fn crash_seed(test: &str) -> u64 {
    let seed = std::env::var("FUNNEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("{test} seed: {seed} (FUNNEL_CRASH_SEED={seed} replays it)");
    seed
}

/// A copy of the repository's demo workspace in a temporary folder.
pub fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    // The demo's own parts only: a site a user adds to the repository (as the
    // README suggests) is not the tests' business.
    for part in [
        "workflows",
        "templates",
        "sites/demo",
        "contacts",
        "campaigns",
    ] {
        copy_tree(&repo_root().join(part), &dir.path().join(part));
    }
    std::fs::copy(
        repo_root().join("funnel.yaml"),
        dir.path().join("funnel.yaml"),
    )
    .expect("config");
    dir
}

/// Runs the binary, which must succeed, and parses what it printed as JSON.
pub fn json_out(args: &[&str], cwd: &Path) -> serde_json::Value {
    let out = run(args, cwd);
    assert!(
        out.status.success(),
        "funnel {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "funnel {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Makes `dir` a git repository with everything in it committed.
pub fn git_init(dir: &Path) {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.org")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.org")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(".gitignore"), ".funnel/\n").expect("gitignore");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "workspace"]);
}

/// A new API token's secret (`funnel tokens create`).
pub fn api_token(dir: &Path, name: &str, role: &str) -> String {
    let out = run(&["tokens", "create", "--name", name, "--role", role], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts the demo's welcome drip on the `newsletter` tag instead of the
/// confirmed list (the demo's own trigger, after double opt-in), for tests of
/// how CRM changes start workflows.
pub fn drip_on_tag(dir: &Path) {
    let path = dir.join("workflows/welcome-drip.yaml");
    let text = std::fs::read_to_string(&path).expect("welcome-drip.yaml");
    let changed = text.replace(
        "  type: list_joined\n  list: newsletter\n",
        "  type: tag_added\n  tag: newsletter\n",
    );
    assert_ne!(changed, text, "welcome-drip.yaml changed shape");
    std::fs::write(&path, changed).expect("write welcome-drip.yaml");
}
