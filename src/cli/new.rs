//! `funnel new site NAME --template ID [--set KEY=VALUE…]`: writes
//! `sites/NAME/site.yaml` from a template, then validates the workspace with it
//! (an invalid result is removed again, so nothing half-made stays).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::ColorChoice;
use crate::catalog;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// A new site from a template.
    Site {
        /// The site's folder name under sites/ (lowercase, digits, dashes).
        name: String,
        /// The template id (`funnel templates list`).
        #[arg(long)]
        template: String,
        /// A template variable's value; repeat for several.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The site's display name (default: company_name, else NAME).
        #[arg(long)]
        title: Option<String>,
        /// The site's own domain, e.g. `www.acme.example`: its canonical URLs,
        /// sitemap and social cards use it (default: the workspace's public_url).
        #[arg(long)]
        domain: Option<String>,
        /// The workspace folder (default: the one containing the current folder).
        #[arg(long)]
        workspace: Option<PathBuf>,
    },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Cmd::Site {
        name,
        template,
        set,
        title,
        domain,
        workspace,
    } = args.command;
    let Some(ws) = super::loaded::valid_workspace(workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let mut sets = Vec::new();
    for s in &set {
        let Some((k, v)) = s.split_once('=') else {
            anyhow::bail!("`--set {s}`: write KEY=VALUE");
        };
        sets.push((k.trim().to_string(), v.to_string()));
    }
    if ws.site_template(&template).is_none() {
        let ids: Vec<&str> = ws.site_template_ids().collect();
        anyhow::bail!(
            "no template `{template}`; {}",
            crate::diagnostic::suggest(&template, &ids, "the templates are")
        );
    }
    // On a terminal, ask for what the template needs and the command line lacks.
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        for (var, spec) in catalog::missing_variables(&ws, &template, &sets) {
            let about = spec
                .description
                .as_deref()
                .or(spec.label.as_deref())
                .unwrap_or_default();
            eprint!(
                "{var}{}: ",
                if about.is_empty() {
                    String::new()
                } else {
                    format!(" ({about})")
                }
            );
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            let answer = answer.trim();
            if !answer.is_empty() {
                sets.push((var, answer.to_string()));
            }
        }
    }
    let text = catalog::instantiate(
        &ws,
        &template,
        &name,
        title.as_deref(),
        domain.as_deref(),
        &sets,
    )?;
    let dir = ws.root.join("sites").join(&name);
    let file = dir.join("site.yaml");
    if file.exists() {
        anyhow::bail!("{} exists already; choose another name", file.display());
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(&file, &text)?;
    match super::loaded::valid_workspace(Some(&ws.root), color) {
        Ok(Some(_)) => {
            println!("created {} from template `{template}`", file.display());
            println!("publish it with `funnel publish {name}`");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            let _ = std::fs::remove_file(&file);
            let _ = std::fs::remove_dir(&dir);
            other?;
            Ok(ExitCode::from(1))
        }
    }
}
