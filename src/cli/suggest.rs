//! `funnel suggest`: workflows from the recipe library for a component, or for
//! every component of a site that no workflow starts from yet, ranked by
//! confidence with the reasons; `--write` writes the best one for each as a
//! workflow and its test, kept only if the workspace still validates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Map, Value as Json};

use super::ColorChoice;
use super::loaded::TableFormat;
use crate::model::recipe::{Goal, Industry};
use crate::suggest::rank::Query;
use crate::suggest::{self, ForComponent};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component type (`contact-form`, `pricing-table`…); with `--site`,
    /// only that site's instances of it.
    #[arg(long)]
    pub component: Option<String>,
    /// The component's config (YAML or JSON: its fields, heading, button…).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The site's industry (default: the site's `industry`, else its template's).
    #[arg(long, value_parser = parse_industry)]
    pub industry: Option<Industry>,
    /// A goal, most important first; repeat for more (default: the site's `goals`).
    #[arg(long = "goal", value_parser = parse_goal)]
    pub goals: Vec<Goal>,
    /// Every component of this site that no workflow starts from yet.
    #[arg(long)]
    pub site: Option<String>,
    /// With `--site`: only this component instance.
    #[arg(long, requires = "site")]
    pub instance: Option<String>,
    /// Write the best suggestion for each component as a workflow and its test.
    #[arg(long, requires = "site")]
    pub write: bool,
    /// Ask the language model of funnel.yaml's `ai:` for a workflow for the
    /// instance (validated, repaired once, else rejected).
    #[arg(long, requires = "instance")]
    pub model: bool,
    /// How many suggestions to show per component.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

fn parse_industry(text: &str) -> Result<Industry, String> {
    Industry::parse(text).ok_or_else(|| {
        let all: Vec<&str> = Industry::ALL.iter().map(|i| i.as_str()).collect();
        format!("industries: {}", all.join(", "))
    })
}

fn parse_goal(text: &str) -> Result<Goal, String> {
    Goal::parse(text).ok_or_else(|| {
        let all: Vec<&str> = Goal::ALL.iter().map(|g| g.as_str()).collect();
        format!("goals: {}", all.join(", "))
    })
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let library = suggest::recipes::load(&ws.root)?;
    let config: Map<String, Json> = match &args.config {
        Some(path) => match super::loaded::read_data(path)? {
            Json::Object(m) => m,
            _ => anyhow::bail!("{}: the config must be a mapping of keys", path.display()),
        },
        None => Map::new(),
    };
    let mut results: Vec<ForComponent> = Vec::new();
    match &args.site {
        None => {
            let Some(component) = &args.component else {
                anyhow::bail!("name a component type (--component) or a site (--site)");
            };
            let query = Query {
                component: component.clone(),
                config,
                industry: args.industry,
                goals: args.goals.clone(),
            };
            results.push(suggest::suggest(&ws, &library, &query, None, None)?);
        }
        Some(site) => {
            super::loaded::known_site(&ws, site)?;
            let doc = &ws.sites[site.as_str()];
            let industry = args.industry.or_else(|| suggest::site_industry(&ws, site));
            let goals = if args.goals.is_empty() {
                doc.value.goals.clone()
            } else {
                args.goals.clone()
            };
            let mut matched = false;
            for (instance, component, own) in suggest::site_components(&ws, site) {
                if args.instance.as_ref().is_some_and(|i| *i != instance)
                    || args.component.as_ref().is_some_and(|c| *c != component)
                {
                    continue;
                }
                matched = true;
                let mut cfg = own;
                if args.instance.is_some() {
                    cfg.extend(config.clone());
                }
                let query = Query {
                    component,
                    config: cfg,
                    industry,
                    goals: goals.clone(),
                };
                let found = suggest::suggest(&ws, &library, &query, Some(site), Some(&instance))?;
                // A site analysis proposes workflows where none start yet.
                if args.instance.is_none() && !found.existing.is_empty() {
                    continue;
                }
                results.push(found);
            }
            if !matched {
                anyhow::bail!("site `{site}` has no such component instance");
            }
        }
    }
    for r in &mut results {
        r.suggestions.truncate(args.top);
    }
    if args.model {
        return drafted(&ws, &library, &results, &args);
    }
    let mut written = Vec::new();
    if args.write {
        let site = args.site.as_deref().unwrap_or_default();
        let picks: Vec<(&suggest::recipes::LoadedRecipe, &str)> = results
            .iter()
            .filter_map(|r| {
                let best = r.suggestions.first()?;
                Some((library.get(&best.recipe)?, r.instance.as_deref()?))
            })
            .collect();
        if !picks.is_empty() {
            match suggest::write(&ws.root, &picks, site)? {
                Ok(w) => written = w,
                Err(errors) => {
                    let text = crate::diagnostic::render_human(
                        &errors,
                        color.enabled(&std::io::stderr()),
                        |_| None,
                    );
                    eprint!("{text}");
                    let names: Vec<&str> = picks.iter().map(|(r, _)| r.id.as_str()).collect();
                    anyhow::bail!(
                        "the suggested workflows ({}) do not validate; nothing was written",
                        names.join(", ")
                    );
                }
            }
        }
    }
    match args.format {
        TableFormat::Json => {
            let out = serde_json::json!({"components": results, "written": written});
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("suggestions as JSON")?
            );
        }
        TableFormat::Table => print_human(&results, &written),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(results: &[ForComponent], written: &[suggest::Written]) {
    if results.is_empty() {
        println!("every component already starts a workflow; nothing to suggest");
    }
    for r in results {
        let at = match (&r.site, &r.instance) {
            (Some(s), Some(i)) => format!("{s} › {i} ({})", r.component),
            _ => r.component.clone(),
        };
        println!("{at}");
        if r.suggestions.is_empty() && r.excluded.is_empty() {
            println!("  no recipe for `{}` components yet", r.component);
        } else if r.suggestions.is_empty() {
            println!("  no recipe fits as the component is configured");
        }
        for (n, s) in r.suggestions.iter().enumerate() {
            println!(
                "  {}. {}  {:.2}  [{}]",
                n + 1,
                s.name,
                s.confidence,
                s.recipe
            );
            for why in &s.why {
                println!("       - {why}");
            }
        }
        for e in &r.excluded {
            println!("  left out {}: {}", e.recipe, e.why);
        }
    }
    for w in written {
        println!("wrote workflow `{}`:", w.workflow);
        for f in &w.files {
            println!("  {}", f.display());
        }
    }
}

/// `--model`: a draft from the language model for the one instance asked.
fn drafted(
    ws: &crate::workspace::Workspace,
    library: &std::collections::BTreeMap<String, suggest::recipes::LoadedRecipe>,
    results: &[ForComponent],
    args: &Args,
) -> anyhow::Result<ExitCode> {
    let Some(config) = ws.config.as_ref().and_then(|c| c.value.ai.as_ref()) else {
        anyhow::bail!("funnel.yaml has no `ai:` section naming a model (endpoint, model, api_key)");
    };
    let (Some(site), Some(target)) = (args.site.as_deref(), results.first()) else {
        anyhow::bail!("--model drafts for one instance: name --site and --instance");
    };
    let instance = target.instance.clone().unwrap_or_default();
    let query = Query {
        component: target.component.clone(),
        config: suggest::site_components(ws, site)
            .into_iter()
            .find(|(id, _, _)| *id == instance)
            .map(|(_, _, c)| c)
            .unwrap_or_default(),
        industry: target.industry,
        goals: target.goals.clone(),
    };
    let facts = suggest::facts(ws, &query.component, &query.config)?;
    let example = target
        .suggestions
        .first()
        .and_then(|s| library.get(&s.recipe))
        .map(|r| r.instantiate(site, &instance, &r.id).workflow);
    let id = suggest::free_workflow_id(&ws.root, &format!("{instance}-drafted"), site);
    let rt = super::loaded::runtime()?;
    let draft = rt.block_on(suggest::model::draft(
        ws,
        config,
        &query,
        &facts,
        &suggest::model::Target {
            site,
            instance: &instance,
            workflow_id: &id,
        },
        example.as_deref(),
    ))?;
    let mut written = None;
    if args.write {
        match suggest::write_files(
            &ws.root,
            &draft.workflow_id,
            &[(
                format!("workflows/{}.yaml", draft.workflow_id),
                draft.yaml.clone(),
            )],
        )? {
            Ok(w) => written = Some(w),
            Err(errors) => anyhow::bail!(
                "the draft no longer validates ({} errors); nothing was written",
                errors.len()
            ),
        }
    }
    match args.format {
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"draft": draft, "written": written}))?
        ),
        TableFormat::Table => {
            println!(
                "a validated draft for {site} › {instance}{}:\n",
                if draft.repaired {
                    " (repaired once)"
                } else {
                    ""
                }
            );
            print!("{}", draft.yaml);
            if let Some(w) = written {
                for f in &w.files {
                    println!("\nwrote {}", f.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
