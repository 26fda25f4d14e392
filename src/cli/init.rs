//! `funnel init [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to create the workspace. Default: the current folder.
    pub dir: Option<PathBuf>,
    /// The workspace's name. Default: the folder's name.
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let name = args.name.unwrap_or_else(|| {
        std::path::absolute(&dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "my-funnel".into())
    });
    let written = crate::scaffold::init(&dir, &name)?;
    println!(
        "created a funnel workspace in {} ({} files)",
        dir.display(),
        written.len()
    );
    println!("next: cd {} && funnel validate", dir.display());
    Ok(ExitCode::SUCCESS)
}
