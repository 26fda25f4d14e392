//! `funnel validate` arguments: path filters, warnings, `--deny-warnings`.

use crate::support::{copy_tree, fixtures, run};

fn workspace_with_two_broken_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    let broken = "name: T\ntrigger: {type: tag_added, tag: x}\nsteps: []\nstesp: 1\n";
    std::fs::write(dir.path().join("workflows/one.yaml"), broken).expect("write");
    std::fs::write(dir.path().join("workflows/two.yaml"), broken).expect("write");
    dir
}

fn files_reported(args: &[&str], dir: &std::path::Path) -> (Option<i32>, Vec<String>) {
    let mut all = vec!["validate", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all, dir);
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let mut files: Vec<String> = diags
        .iter()
        .filter_map(|d| d["file"].as_str().map(String::from))
        .collect();
    files.dedup();
    (out.status.code(), files)
}

#[test]
fn a_path_shows_only_the_problems_under_it() {
    let dir = workspace_with_two_broken_files();
    let (code, files) = files_reported(&[], dir.path());
    assert_eq!(
        (code, files),
        (
            Some(1),
            vec!["workflows/one.yaml".into(), "workflows/two.yaml".into()]
        )
    );
    let (code, files) = files_reported(&["workflows/one.yaml"], dir.path());
    assert_eq!(
        (code, files),
        (Some(1), vec!["workflows/one.yaml".to_string()])
    );
    let (code, files) = files_reported(&["contacts"], dir.path());
    assert_eq!((code, files), (Some(0), Vec::<String>::new()));
}

#[test]
fn paths_are_shown_as_given_from_another_folder() {
    let dir = workspace_with_two_broken_files();
    let parent = dir.path().parent().expect("parent");
    let name = dir
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let target = format!("{name}/workflows/two.yaml");
    let (code, files) = files_reported(&[&target], parent);
    assert_eq!((code, files), (Some(1), vec![target]));
}

#[test]
fn warnings_pass_unless_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    std::fs::write(dir.path().join("workflows/old.yml"), "name: old\n").expect("write");
    let out = run(&["validate", "--format", "json"], dir.path());
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["severity"], "warning");
    assert_eq!(diags[0]["code"], "unknown-file");
    assert_eq!(out.status.code(), Some(0));
    let out = run(&["validate", "--deny-warnings"], dir.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_missing_path_is_an_error_that_stops_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    let out = run(&["validate", "nowhere.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or folder"));
}

/// funnel.yaml's email settings beyond their schema: plain SMTP to another
/// machine and a DKIM key named twice are errors at their line; a signing domain
/// unlike the sender's is a warning.
#[test]
fn email_settings_are_checked_where_they_are_written() {
    let dir = crate::support::demo();
    let config = std::fs::read_to_string(dir.path().join("funnel.yaml")).expect("config");
    let config = config.replace(
        "  outbox: .funnel/outbox\n",
        "  outbox: .funnel/outbox\n  smtp:\n    host: smtp.example.org\n    tls: none\n  dkim:\n    domain: other.example\n    selector: s1\n    algorithm: ed25519\n    private_key: ${DKIM_KEY}\n    private_key_file: keys/dkim.key\n",
    );
    std::fs::write(dir.path().join("funnel.yaml"), &config).expect("write");
    let line_of = |needle: &str| {
        config
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .expect(needle)
    };
    let out = run(&["validate", "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let find = |text: &str| {
        diags
            .iter()
            .find(|d| d["message"].as_str().is_some_and(|m| m.contains(text)))
            .unwrap_or_else(|| panic!("no `{text}` in {diags:#?}"))
    };
    let tls = find("in the clear");
    assert_eq!(tls["file"], "funnel.yaml");
    assert_eq!(tls["severity"], "error");
    assert_eq!(tls["line"], line_of("tls: none"));
    let twice = find("exactly one of");
    assert_eq!(twice["severity"], "error");
    let domain = find("DMARC");
    assert_eq!(domain["severity"], "warning");
    assert_eq!(domain["line"], line_of("domain: other.example"));
}

#[test]
fn tls_settings_are_checked_where_they_are_written() {
    let dir = crate::support::demo();
    let config = std::fs::read_to_string(dir.path().join("funnel.yaml")).expect("config");
    let config = format!(
        "{config}\ndaemon:\n  tls:\n    acme_directory: http://acme.example/dir\n    acme_ca_file: certs/missing.pem\n"
    );
    std::fs::write(dir.path().join("funnel.yaml"), &config).expect("write");
    let line_of = |needle: &str| {
        config
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .expect(needle)
    };
    let out = run(&["validate", "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let find = |text: &str| {
        diags
            .iter()
            .find(|d| d["message"].as_str().is_some_and(|m| m.contains(text)))
            .unwrap_or_else(|| panic!("no `{text}` in {diags:#?}"))
    };
    let directory = find("is not an https URL");
    assert_eq!(directory["line"], line_of("acme_directory:"));
    let ca = find("certs/missing.pem");
    assert_eq!(ca["line"], line_of("acme_ca_file:"));
    // With TLS on, a site's domain must be a name a certificate can cover.
    let site = dir.path().join("sites/demo/site.yaml");
    let text = std::fs::read_to_string(&site).expect("site");
    std::fs::write(
        &site,
        text.replace(
            "domain: www.northwind.example",
            "domain: www.northwind.example:8443",
        ),
    )
    .expect("write");
    let out = run(&["validate", "--format", "json"], dir.path());
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let bad = diags
        .iter()
        .find(|d| d["message"].as_str().is_some_and(|m| m.contains("8443")))
        .unwrap_or_else(|| panic!("no domain diagnostic in {diags:#?}"));
    assert_eq!(bad["file"], "sites/demo/site.yaml");
    // The daemon refuses to start HTTPS without the settings, and the settings
    // without a place to listen.
    let demo = crate::support::demo();
    let out = run(
        &[
            "daemon",
            "--bind",
            "127.0.0.1:0",
            "--https-bind",
            "127.0.0.1:0",
        ],
        demo.path(),
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs `daemon.tls`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
