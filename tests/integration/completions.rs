//! `funnel completions SHELL`: each script is one its shell reads, and bash's
//! completes the subcommands and their flags.

use std::process::Command;

use super::support::funnel;

fn script(shell: &str) -> String {
    let out = funnel()
        .args(["completions", shell])
        .output()
        .expect("funnel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("funnel.bash");
    std::fs::write(&file, script("bash")).expect("write");
    // As bash calls a completion function: the words so far, the command,
    // the word being completed and the one before it.
    let complete = |done: &[&str], cur: &str| {
        let words: Vec<&str> = done.iter().copied().chain([cur]).collect();
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let probe = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
             _funnel funnel '{cur}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            quoted.join(" "),
            done.len(),
            words.join(" "),
            done.last().copied().unwrap_or(""),
        );
        let out = Command::new("bash")
            .args(["-c", &probe])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subs = complete(&["funnel"], "dep");
    assert!(subs.lines().any(|l| l == "deploy"), "{subs}");
    let flags = complete(&["funnel", "deploy"], "--");
    assert!(
        flags.lines().any(|l| l == "--to") && flags.lines().any(|l| l == "--log"),
        "{flags}"
    );
}

#[test]
fn zsh_and_fish_read_their_scripts() {
    for (shell, check) in [("zsh", ["-n"]), ("fish", ["--no-execute"])] {
        let found = Command::new(shell)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var("CI").is_err(),
                "{shell} is missing: .ci/test installs it"
            );
            eprintln!("skipped: {shell} is not installed");
            continue;
        }
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join(format!("funnel.{shell}"));
        let text = script(shell);
        assert!(text.contains("deploy"), "{shell}: no subcommands");
        std::fs::write(&file, text).expect("write");
        let out = Command::new(shell)
            .args(check)
            .arg(&file)
            .output()
            .expect("shell");
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
