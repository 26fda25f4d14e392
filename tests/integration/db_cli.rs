//! `funnel db`, `funnel backup` and `funnel restore` on a real workspace.

use crate::support::run;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new workspace under `dir` with its store created.
fn migrated_workspace(dir: &std::path::Path) -> std::path::PathBuf {
    let ws = dir.join("ws");
    assert!(
        run(&["init", ws.to_str().expect("utf-8")], dir)
            .status
            .success()
    );
    let out = run(&["db", "migrate"], &ws);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ws
}

#[test]
fn db_commands_migrate_check_back_up_and_restore_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = migrated_workspace(dir.path());
    if !crate::backend::is_postgres() {
        assert!(ws.join(".funnel/funnel.db").is_file());
    }

    let out = run(&["db", "status"], &ws);
    assert!(
        stdout(&out).contains("migration V1 initial: applied"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("contacts           0 rows"),
        "{}",
        stdout(&out)
    );

    // Put something in the store, back it up, damage nothing, restore, find it.
    crate::backend::execute(
        &ws,
        "INSERT INTO contacts (uid, email, status, created_at, updated_at) VALUES ('u1', 'ada@example.com', 'active', 1, 1)",
    );
    let backup = dir.path().join("backup.db");
    let out = run(&["backup", "--out", backup.to_str().expect("utf-8")], &ws);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::backend::execute(&ws, "DELETE FROM contacts");

    let out = run(&["restore", backup.to_str().expect("utf-8")], &ws);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: i64 = crate::backend::scalar(
        &ws,
        "SELECT count(*) FROM contacts WHERE email = 'ada@example.com'",
        &[],
    );
    assert_eq!(n, 1);

    let out = run(&["db", "check"], &ws);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = run(&["db", "vacuum"], &ws);
    assert!(out.status.success());
}

#[test]
fn restore_refuses_a_file_that_is_not_a_funnel_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = migrated_workspace(dir.path());
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .expect("open")
        .execute_batch("CREATE TABLE t (x)")
        .expect("create");
    let out = run(&["restore", other.to_str().expect("utf-8")], &ws);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a funnel store"));
    // The store is untouched.
    assert!(run(&["db", "check"], &ws).status.success());
    let out = run(&["db", "status"], &ws);
    assert!(stdout(&out).contains("migration V1 initial: applied"));
}
