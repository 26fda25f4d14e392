//! `funnel deploy`: a site onto a git branch holds exactly the published files,
//! a re-run writes nothing, the checked-out branch is refused; a broken link
//! deploys nothing; a folder deploy is swapped in whole while a reader keeps
//! reading it; every deploy is in the site's log with who made it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::support::{demo, files_below, git_init, json_out, run};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file below `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_below(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).expect("read");
            (rel.to_string_lossy().replace('\\', "/"), bytes)
        })
        .collect()
}

/// The demo site as `funnel publish` writes it, into `out`.
fn published(d: &Path, out: &str) -> BTreeMap<String, Vec<u8>> {
    let o = run(&["publish", "demo", "--out", out], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    contents(&d.join(out).join("demo"))
}

fn retitle(d: &Path, title: &str) {
    let yaml = d.join("sites/demo/site.yaml");
    let text = std::fs::read_to_string(&yaml).expect("site.yaml");
    let line = text
        .lines()
        .find(|l| {
            l.trim_start().starts_with("title: Northwind Analytics")
                || l.contains("title: Version ")
        })
        .expect("the home page title")
        .to_string();
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    std::fs::write(
        &yaml,
        text.replacen(&line, &format!("{indent}title: {title}"), 1),
    )
    .expect("edit");
}

fn deploy(d: &Path, to: &str) -> std::process::Output {
    run(&["deploy", "demo", "--to", to], d)
}

#[test]
fn a_branch_deploy_holds_exactly_the_published_files_and_a_rerun_writes_nothing() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let head = git(d, &["rev-parse", "HEAD"]);
    let want = published(d, "out");
    std::fs::remove_dir_all(d.join("out")).expect("clean");
    let o = deploy(d, "git:gh-pages");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = git(d, &["rev-parse", "gh-pages"]);
    let listed: Vec<String> = git(d, &["ls-tree", "-r", "--name-only", "gh-pages"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(listed, want.keys().cloned().collect::<Vec<_>>());
    for (path, bytes) in &want {
        let shown = Command::new("git")
            .args(["show", &format!("gh-pages:{path}")])
            .current_dir(d)
            .output()
            .expect("git show");
        assert_eq!(&shown.stdout, bytes, "{path}");
    }
    // The working tree, the index and the checked-out branch are untouched.
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(d, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(d, &["status", "--porcelain"]), "");
    // The same files again: no new commit.
    let o = deploy(d, "git:gh-pages");
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing written"));
    assert_eq!(git(d, &["rev-parse", "gh-pages"]), first);
    // A change: one new commit on top, with the new files only.
    retitle(d, "Version two");
    let o = deploy(d, "git:gh-pages");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let second = git(d, &["rev-parse", "gh-pages"]);
    assert_ne!(second, first);
    assert_eq!(git(d, &["rev-parse", "gh-pages^"]), first);
    assert!(git(d, &["show", "gh-pages:index.html"]).contains("Version two"));
    // Never the checked-out branch, never a name git refuses.
    for (to, says) in [
        ("git:main", "checked-out branch"),
        ("git:bad..name", "not a branch name"),
        ("s3:bucket", "git:BRANCH"),
    ] {
        let o = deploy(d, to);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{to}: {err}");
    }
    assert_eq!(git(d, &["rev-parse", "HEAD"]), head);
    // The log: newest first, who, and whether anything changed.
    let log = json_out(&["deploy", "demo", "--log", "--json"], d);
    let rows = log["deploys"].as_array().expect("deploys");
    assert_eq!(rows.len(), 3, "{log}");
    assert_eq!(rows[0]["revision"], second.as_str());
    assert_eq!(rows[0]["changed"], true);
    assert_eq!(rows[1]["changed"], false);
    assert_eq!(rows[2]["revision"], first.as_str());
    assert!(
        rows.iter()
            .all(|r| r["target"] == "git:gh-pages" && r["actor"].is_string())
    );
}

#[test]
fn a_failed_link_check_deploys_nothing() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let yaml = d.join("sites/demo/site.yaml");
    let text = std::fs::read_to_string(&yaml).expect("site.yaml");
    std::fs::write(
        &yaml,
        text.replace(
            "button_href: https://jobs.northwind.example",
            "button_href: /careers#open-roles",
        ),
    )
    .expect("edit");
    for to in ["git:gh-pages", "dir:live"] {
        let o = deploy(d, to);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("/careers#open-roles"), "{err}");
    }
    assert!(
        Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", "gh-pages"])
            .current_dir(d)
            .output()
            .expect("git")
            .stdout
            .is_empty()
    );
    assert!(!d.join("live").exists() && !d.join(".live.releases").exists());
    let log = json_out(&["deploy", "demo", "--log", "--json"], d);
    assert_eq!(log["deploys"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_folder_deploy_is_never_seen_half_written() {
    let dir = demo();
    let d = dir.path();
    retitle(d, "Version A");
    let a = published(d, "a");
    retitle(d, "Version B");
    let b = published(d, "b");
    assert_ne!(a["index.html"], b["index.html"]);
    let live: PathBuf = d.join("live");
    let o = deploy(d, "dir:live");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(contents(&live), b);
    // A reader reads the live folder as fast as it can while it flips.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (live, stop, a, b) = (live.clone(), stop.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let index =
                    std::fs::read(live.join("index.html")).expect("index.html is always there");
                assert!(
                    index == a["index.html"] || index == b["index.html"],
                    "a half-written index.html"
                );
                // A whole release through the link it points at now.
                let release = live
                    .parent()
                    .expect("parent")
                    .join(std::fs::read_link(&live).expect("a link"));
                let seen = contents(&release);
                assert!(
                    seen == a || seen == b,
                    "a release neither A nor B: {:?}",
                    seen.keys().collect::<Vec<_>>()
                );
                reads += 1;
            }
            reads
        })
    };
    for i in 0..6 {
        retitle(d, if i % 2 == 0 { "Version A" } else { "Version B" });
        let o = deploy(d, "dir:live");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw only whole sites");
    assert!(reads > 0);
    assert_eq!(contents(&live), b);
    // The same build again writes no release; old releases are pruned.
    let o = deploy(d, "dir:live");
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing written"));
    let releases = std::fs::read_dir(d.join(".live.releases"))
        .expect("releases")
        .count();
    assert!(releases <= 3, "{releases} releases kept");
    // A real folder in the way is not replaced.
    std::fs::create_dir_all(d.join("mine")).expect("mkdir");
    std::fs::write(d.join("mine/keep.txt"), "mine").expect("write");
    let o = deploy(d, "dir:mine");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("funnel did not make"));
    assert_eq!(
        std::fs::read_to_string(d.join("mine/keep.txt")).expect("kept"),
        "mine"
    );
}
