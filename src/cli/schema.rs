//! `funnel schema [KIND] [--out DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::model::FileKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file kind (funnel, workflow, workflow-test, site-template, component,
    /// email-template, site, fields, lists, segments, scoring, pipelines). Without it,
    /// every kind.
    pub kind: Option<String>,
    /// Write `<kind>.schema.json` files into this folder instead of printing.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let kinds: Vec<FileKind> = match &args.kind {
        Some(name) => match FileKind::from_name(name) {
            Some(k) => vec![k],
            None => {
                let names: Vec<&str> = FileKind::ALL.iter().map(|k| k.name()).collect();
                anyhow::bail!("unknown kind `{name}`; kinds: {}", names.join(", "));
            }
        },
        None => FileKind::ALL.to_vec(),
    };
    match &args.out {
        Some(dir) => {
            let written = crate::scaffold::write_schemas(dir, &kinds)
                .with_context(|| format!("cannot write schemas into {}", dir.display()))?;
            for path in written {
                println!("wrote {}", path.display());
            }
        }
        None if kinds.len() == 1 => print!("{}", crate::schema::schema_text(kinds[0])),
        None => {
            let all: serde_json::Map<String, serde_json::Value> = kinds
                .iter()
                .map(|k| (k.name().to_string(), crate::schema::schema_for(*k)))
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
