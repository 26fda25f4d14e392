//! `funnel service install`: a systemd unit that runs `funnel daemon` for the
//! workspace as a service: `Type=notify` with a watchdog (the daemon says
//! when it is ready and pings while its store answers), restarted on failure,
//! as the given user in the workspace's folder, logging to the journal,
//! secrets from an optional environment file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write the unit file (then `systemctl daemon-reload`, `systemctl enable --now`).
    Install(Install),
}

#[derive(Debug, clap::Args)]
struct Install {
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// The address the daemon listens on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    bind: SocketAddr,
    /// The account the daemon runs as (default: you).
    #[arg(long, value_name = "USER")]
    run_as: Option<String>,
    /// A user service (`systemctl --user`) instead of a system one.
    #[arg(long)]
    user: bool,
    /// The unit's name: `funnel-NAME.service` (default: the workspace folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Where to write the unit (`-`: print it). Default: /etc/systemd/system/,
    /// or ~/.config/systemd/user/ with --user.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace a unit file that is there already.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Cmd::Install(i) = args.command;
    let start = match &i.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir()?,
    };
    let root = crate::workspace::find_root(&start)
        .with_context(|| format!("no funnel.yaml in {} or above", start.display()))?;
    let root = root.canonicalize().context("the workspace folder")?;
    let name = match &i.name {
        Some(n) => n.clone(),
        None => unit_name(&root),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        anyhow::bail!("`{name}` cannot name a unit: use letters, digits, `-`, `_` and `.`");
    }
    let run_as = if i.user {
        None
    } else {
        Some(
            i.run_as
                .clone()
                // Under sudo, the person who ran it, not root.
                .or_else(|| std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()))
                .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
                .or_else(|| {
                    std::process::Command::new("id")
                        .arg("-un")
                        .output()
                        .ok()
                        .filter(|o| o.status.success())
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                        .filter(|u| !u.is_empty())
                })
                .context("who should the daemon run as? give --run-as USER")?,
        )
    };
    if let Some(who) = &run_as {
        let ok = who.len() <= 32
            && who
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && who
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if !ok {
            anyhow::bail!(
                "`{who}` is not a user name systemd takes (lowercase letters, digits, `_`, `-`)"
            );
        }
        if who == "root" && i.run_as.as_deref() != Some("root") {
            anyhow::bail!(
                "the daemon would run as root; name the account it should run as with --run-as USER (or --run-as root if you mean it)"
            );
        }
    }
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .context("finding the funnel binary")?;
    // A unit file is line-based: a path with a line break (or ending in a
    // backslash, which continues the line) could add a directive.
    for p in [&exe, &root] {
        let t = p.to_string_lossy();
        if t.chars().any(char::is_control) || t.ends_with('\\') {
            anyhow::bail!(
                "{} cannot go in a unit file (a control character or a trailing backslash)",
                p.display()
            );
        }
    }
    let text = unit(&Unit {
        exe: &exe,
        root: &root,
        bind: i.bind,
        run_as: run_as.as_deref(),
        user: i.user,
        name: &name,
    });
    let target = match &i.output {
        Some(p) if p.as_os_str() == "-" => {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(p) => p.clone(),
        None if i.user => crate::remotes::config_dir()?
            .parent()
            .map(|c| c.join("systemd/user"))
            .context("no config folder")?
            .join(format!("funnel-{name}.service")),
        None => PathBuf::from(format!("/etc/systemd/system/funnel-{name}.service")),
    };
    if target.exists()
        && !i.force
        && std::fs::read_to_string(&target).ok().as_deref() != Some(&text)
    {
        anyhow::bail!("{} is there already; --force replaces it", target.display());
    }
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&target, &text).with_context(|| format!("writing {}", target.display()))?;
    let ctl = if i.user {
        "systemctl --user"
    } else {
        "sudo systemctl"
    };
    println!("wrote {}", target.display());
    println!("start it:   {ctl} daemon-reload && {ctl} enable --now funnel-{name}");
    println!(
        "its logs:   journalctl {}-u funnel-{name} -f",
        if i.user { "--user " } else { "" }
    );
    println!(
        "secrets (${{ENV}} in funnel.yaml) go in {}",
        env_file(i.user, &name)
    );
    Ok(ExitCode::SUCCESS)
}

fn unit_name(root: &Path) -> String {
    root.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

fn env_file(user: bool, name: &str) -> String {
    if user {
        format!("~/.config/funnel/{name}.env")
    } else {
        format!("/etc/funnel/{name}.env")
    }
}

struct Unit<'a> {
    exe: &'a Path,
    root: &'a Path,
    bind: SocketAddr,
    run_as: Option<&'a str>,
    user: bool,
    name: &'a str,
}

/// One argument of `ExecStart=`, quoted as systemd reads it: specifiers (`%`)
/// and variables (`$`) doubled, quotes and backslashes escaped.
fn exec_arg(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

/// A path in a setting that is not a command line: only specifiers escaped.
fn plain(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

fn unit(u: &Unit<'_>) -> String {
    let root = u.root.display().to_string();
    let env_file = if u.user {
        format!("%h/.config/funnel/{}.env", u.name)
    } else {
        format!("/etc/funnel/{}.env", u.name)
    };
    let mut s = String::new();
    s.push_str("# Written by `funnel service install`; run it again to change this file.\n");
    s.push_str("[Unit]\n");
    s.push_str(&format!(
        "Description=funnel daemon for {}\n",
        plain(u.root)
    ));
    s.push_str("After=network-online.target\nWants=network-online.target\n");
    // Restarts keep coming for five minutes before systemd gives up.
    s.push_str("StartLimitIntervalSec=300\nStartLimitBurst=20\n\n");
    s.push_str("[Service]\n");
    s.push_str("Type=notify\nNotifyAccess=main\n");
    if let Some(who) = u.run_as {
        s.push_str(&format!("User={who}\n"));
    }
    s.push_str(&format!("WorkingDirectory={}\n", plain(u.root)));
    s.push_str(&format!(
        "ExecStart={} daemon --workspace {} --bind {}\n",
        exec_arg(&u.exe.display().to_string()),
        exec_arg(&root),
        u.bind
    ));
    s.push_str(&format!("EnvironmentFile=-{env_file}\n"));
    s.push_str("Environment=FUNNEL_LOG=info\n");
    s.push_str("Restart=on-failure\nRestartSec=2\n");
    // Migrations run at start; a stop drains requests for up to 10 s.
    s.push_str("TimeoutStartSec=300\nTimeoutStopSec=30\nWatchdogSec=30\n");
    s.push_str("NoNewPrivileges=yes\nPrivateTmp=yes\nProtectSystem=full\n");
    s.push_str("StandardOutput=journal\nStandardError=journal\n");
    s.push_str(&format!("SyslogIdentifier=funnel-{}\n\n", u.name));
    s.push_str("[Install]\n");
    s.push_str(if u.user {
        "WantedBy=default.target\n"
    } else {
        "WantedBy=multi-user.target\n"
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_argument_is_quoted_for_systemd() {
        assert_eq!(exec_arg("/srv/my site"), "\"/srv/my site\"");
        assert_eq!(exec_arg("100%$HOME\"x\\"), "\"100%%$$HOME\\\"x\\\\\"");
    }

    #[test]
    fn a_unit_names_the_daemon_its_user_and_the_watchdog() {
        let text = unit(&Unit {
            exe: Path::new("/usr/local/bin/funnel"),
            root: Path::new("/srv/acme site"),
            bind: "127.0.0.1:7878".parse().expect("addr"),
            run_as: Some("funnel"),
            user: false,
            name: "acme",
        });
        for line in [
            "Type=notify",
            "User=funnel",
            "WorkingDirectory=/srv/acme site",
            "ExecStart=\"/usr/local/bin/funnel\" daemon --workspace \"/srv/acme site\" --bind 127.0.0.1:7878",
            "Restart=on-failure",
            "WatchdogSec=30",
            "EnvironmentFile=-/etc/funnel/acme.env",
            "WantedBy=multi-user.target",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert_eq!(unit_name(Path::new("/srv/Acme Site")), "acme-site");
    }
}
