//! `funnel db migrate|status|vacuum|check`, `funnel backup`, `funnel restore`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::store::{Store, StoreLocation, now_ms};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DbCommand,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (opening the store applies them too).
    Migrate,
    /// Show where the store is, its migrations and its size.
    Status,
    /// Compact the store and empty the write-ahead log.
    Vacuum,
    /// Verify the store's integrity and foreign keys.
    Check,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Where to write the copy. Default: `.funnel/backups/funnel-<time>.db`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup made by `funnel backup`.
    pub file: PathBuf,
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

/// The SQLite store of the workspace, or why there is none.
fn location(workspace: Option<&Path>) -> anyhow::Result<StoreLocation> {
    let start = workspace.unwrap_or(Path::new("."));
    let root = crate::workspace::find_root(start)?;
    let ws = crate::workspace::load(&root, Path::new(""))?;
    if ws.config.is_none() {
        bail!("funnel.yaml has problems; `funnel validate` shows them");
    }
    Ok(StoreLocation::from_config(
        &root,
        ws.config.as_ref().map(|d| &d.value),
    )?)
}

fn open(workspace: Option<&Path>) -> anyhow::Result<Store> {
    let location = location(workspace)?;
    Store::open_blocking(&location)
        .with_context(|| format!("cannot open the store ({})", location.describe()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ws = args.workspace.as_deref();
    match args.command {
        DbCommand::Migrate => {
            // Opening a store applies what is pending; say what that was.
            let store = open(ws)?;
            let rt = runtime()?;
            let applied = rt.block_on(store.migrations())?;
            let latest = applied
                .iter()
                .filter(|m| m.applied)
                .map(|m| m.version)
                .max();
            match latest {
                Some(v) => println!("the store is up to date (schema version {v})"),
                None => println!("the store has no migrations applied"),
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Status => {
            let store = open(ws)?;
            let rt = runtime()?;
            println!("store:   {}", store.describe());
            if let Some(path) = store.sqlite_path() {
                let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                let wal = PathBuf::from(format!("{}-wal", path.display()));
                println!(
                    "size:    {} bytes (+ {} bytes of write-ahead log)",
                    size(path),
                    size(&wal)
                );
            }
            for m in rt.block_on(store.migrations())? {
                let state = if m.applied { "applied" } else { "pending" };
                println!("migration V{} {}: {state}", m.version, m.name);
            }
            for (table, n) in rt.block_on(store.counts())? {
                println!("{table:<18} {n} rows");
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Vacuum => {
            let store = open(ws)?;
            store.vacuum()?;
            println!("vacuumed the store ({})", store.describe());
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Check => {
            let store = open(ws)?;
            let problems = store.check()?;
            if problems.is_empty() {
                println!(
                    "ok: the store ({}) passes the integrity checks",
                    store.describe()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    println!("problem: {p}");
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}

pub fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let store = open(args.workspace.as_deref())?;
    let out = match args.out {
        Some(out) => out,
        None => {
            let root =
                crate::workspace::find_root(args.workspace.as_deref().unwrap_or(Path::new(".")))?;
            let dir = root.join(".funnel/backups");
            std::fs::create_dir_all(&dir)?;
            dir.join(format!("funnel-{}.db", now_ms()))
        }
    };
    store
        .backup_to(&out)
        .with_context(|| format!("cannot write the backup to {}", out.display()))?;
    println!(
        "backed up the store ({}) to {}",
        store.describe(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore_cmd(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if !args.file.is_file() {
        bail!("{}: no such backup file", args.file.display());
    }
    let location = location(args.workspace.as_deref())?;
    Store::restore(&location, &args.file).with_context(|| {
        format!(
            "cannot restore {} into the store ({})",
            args.file.display(),
            location.describe()
        )
    })?;
    println!(
        "restored the store ({}) from {}",
        location.describe(),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use crate::store::postgres::without_password;

    #[test]
    fn hides_the_password_of_a_store_url() {
        assert_eq!(
            without_password("postgres://app:s3cr3t@db.example.com:5432/funnel"),
            "postgres://app:***@db.example.com:5432/funnel"
        );
        assert_eq!(
            without_password("postgres://root@127.0.0.1/test"),
            "postgres://root@127.0.0.1/test"
        );
    }
}
