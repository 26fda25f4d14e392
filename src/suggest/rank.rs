//! The ranker: which recipes fit a component, and how well. A recipe that
//! cannot run on the component (another component type, an event it does not
//! report, a form field it lacks, a list the workspace lacks) is left out with
//! the reason. The others get a confidence in [0, 1], the sum of five parts
//! (docs/suggest.md):
//!
//! | part | weight | what earns it |
//! |---|---|---|
//! | fit | 0.30 | the recipe runs on this component as configured (always, once it is in) |
//! | industry | 0.25 | the site's industry is one of the recipe's (no industry given: 0.4 of it) |
//! | goals | 0.30 | the site's goals the recipe serves, each weighted by its place in both lists |
//! | wording | 0.10 | words of the component's texts (heading, button…) in the recipe's name or description |
//! | fields | 0.05 | the share of the form's fields the workflow reads (not a form: 0.5 of it) |
//!
//! Ties go to the recipe made for fewer industries (the more specific), then
//! to the id. Each suggestion says what earned its parts.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::recipes::LoadedRecipe;
use crate::model::component::ComponentEvent;
use crate::model::recipe::{Goal, Industry};

const FIT: f64 = 0.30;
const INDUSTRY: f64 = 0.25;
const GOALS: f64 = 0.30;
const WORDING: f64 = 0.10;
const FIELDS: f64 = 0.05;
/// The share of the industry part when the site names no industry.
const NO_INDUSTRY: f64 = 0.4;
/// The share of the goals part when the site names no goals.
const NO_GOALS: f64 = 0.4;

/// What is asked: a component as configured, the site's industry and goals.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The component type, e.g. `contact-form`.
    pub component: String,
    /// The instance's config (empty: the component's defaults).
    pub config: Map<String, Json>,
    pub industry: Option<Industry>,
    /// Most important first.
    pub goals: Vec<Goal>,
}

/// What the workspace says about the component and itself.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The events the component reports.
    pub events: Vec<ComponentEvent>,
    /// The form's field names, when the component is a form with fields.
    pub fields: Option<BTreeSet<String>>,
    /// The workspace's contact lists.
    pub lists: BTreeSet<String>,
}

/// The parts of a confidence, each already weighted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Parts {
    pub fit: f64,
    pub industry: f64,
    pub goals: f64,
    pub wording: f64,
    pub fields: f64,
}

/// A recipe that fits, with its confidence and why.
#[derive(Debug, Clone, Serialize)]
pub struct Ranked {
    pub recipe: String,
    pub confidence: f64,
    pub parts: Parts,
    pub reasons: Vec<String>,
}

/// A recipe of the component's type that cannot run on it, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    pub recipe: String,
    pub why: String,
}

fn event_name(e: ComponentEvent) -> &'static str {
    match e {
        ComponentEvent::View => "view",
        ComponentEvent::Click => "click",
        ComponentEvent::Submit => "submit",
    }
}

/// Ranks `recipes` for `query`: the fitting ones best first, and those of the
/// component's type that cannot run on it.
pub fn rank<'a>(
    recipes: impl IntoIterator<Item = &'a LoadedRecipe>,
    query: &Query,
    facts: &Facts,
) -> (Vec<Ranked>, Vec<Excluded>) {
    let words = config_words(&query.config);
    let mut ranked = Vec::new();
    let mut excluded = Vec::new();
    let mut specificity = std::collections::HashMap::new();
    for r in recipes {
        if r.meta.component.as_str() != query.component {
            continue;
        }
        if let Some(why) = misfit(r, facts) {
            excluded.push(Excluded {
                recipe: r.id.clone(),
                why,
            });
            continue;
        }
        let mut reasons = vec![format!(
            "made for the {} of a `{}`",
            match r.meta.event {
                ComponentEvent::Submit => "submissions",
                ComponentEvent::View => "views",
                ComponentEvent::Click => "clicks",
            },
            query.component
        )];
        let industry = industry_share(r, query.industry, &mut reasons);
        let goals = goals_share(r, &query.goals, &mut reasons);
        let wording = wording_share(r, &words, &mut reasons);
        let fields = fields_share(r, facts, &mut reasons);
        let parts = Parts {
            fit: FIT,
            industry: INDUSTRY * industry,
            goals: GOALS * goals,
            wording: WORDING * wording,
            fields: FIELDS * fields,
        };
        let confidence = parts.fit + parts.industry + parts.goals + parts.wording + parts.fields;
        specificity.insert(r.id.clone(), r.meta.industries.len());
        ranked.push(Ranked {
            recipe: r.id.clone(),
            confidence: (confidence * 100.0).round() / 100.0,
            parts,
            reasons,
        });
    }
    ranked.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| specificity.get(&a.recipe).cmp(&specificity.get(&b.recipe)))
            .then_with(|| a.recipe.cmp(&b.recipe))
    });
    (ranked, excluded)
}

/// Why `r` cannot run on the component, if it cannot.
fn misfit(r: &LoadedRecipe, facts: &Facts) -> Option<String> {
    if !facts.events.contains(&r.meta.event) {
        return Some(format!(
            "starts from `{}` events, which this component does not report",
            event_name(r.meta.event)
        ));
    }
    if let Some(fields) = &facts.fields {
        let missing: Vec<&str> = r
            .meta
            .fields
            .iter()
            .filter(|f| !fields.contains(f.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "reads the form field{} `{}`, which this form does not have",
                if missing.len() == 1 { "" } else { "s" },
                missing.join("`, `")
            ));
        }
    }
    let lists: Vec<&str> = r
        .meta
        .lists
        .iter()
        .map(|l| l.as_str())
        .filter(|l| !facts.lists.contains(*l))
        .collect();
    if !lists.is_empty() {
        return Some(format!(
            "uses the list `{}`, which contacts/lists.yaml does not declare",
            lists.join("`, `")
        ));
    }
    None
}

fn industry_share(r: &LoadedRecipe, industry: Option<Industry>, reasons: &mut Vec<String>) -> f64 {
    match industry {
        None => NO_INDUSTRY,
        Some(i) if r.meta.industries.contains(&i) => {
            reasons.push(format!("made for {i}"));
            1.0
        }
        Some(i) => {
            let made_for: Vec<&str> = r.meta.industries.iter().map(|i| i.as_str()).collect();
            reasons.push(format!("made for {}, not {i}", made_for.join(", ")));
            0.0
        }
    }
}

/// The goals the recipe serves, each weighted by its place among the site's
/// goals (1, 1/2, 1/3…) and among the recipe's (1, 0.8, 0.6…), over the most
/// the site's goals could earn.
fn goals_share(r: &LoadedRecipe, goals: &[Goal], reasons: &mut Vec<String>) -> f64 {
    if goals.is_empty() {
        reasons.push("no goals given (a site's `goals` in site.yaml, or --goal)".into());
        return NO_GOALS;
    }
    let mut earned = 0.0;
    let mut most = 0.0;
    let mut served = Vec::new();
    for (k, g) in goals.iter().enumerate() {
        let weight = 1.0 / (k as f64 + 1.0);
        most += weight;
        if let Some(place) = r.meta.goals.iter().position(|x| x == g) {
            earned += weight * (1.0 - 0.2 * place as f64).max(0.2);
            served.push(if place == 0 {
                format!("{g} (its main goal)")
            } else {
                g.to_string()
            });
        }
    }
    if served.is_empty() {
        let its: Vec<&str> = r.meta.goals.iter().map(|g| g.as_str()).collect();
        reasons.push(format!(
            "serves {}, none of the goals asked",
            its.join(", ")
        ));
    } else {
        reasons.push(format!("serves {}", served.join(" and ")));
    }
    if most > 0.0 { earned / most } else { 0.0 }
}

fn wording_share(
    r: &LoadedRecipe,
    words: &std::collections::BTreeMap<String, String>,
    reasons: &mut Vec<String>,
) -> f64 {
    if words.is_empty() {
        return 0.0;
    }
    let name = text_words(&r.meta.name);
    let description = text_words(&r.meta.description);
    let mut score = 0.0;
    let mut hits = Vec::new();
    for (stemmed, shown) in words {
        if name.contains(stemmed) {
            score += 1.0;
            hits.push(shown.clone());
        } else if description.contains(stemmed) {
            score += 0.5;
            hits.push(shown.clone());
        }
    }
    if !hits.is_empty() {
        reasons.push(format!(
            "the component's wording ({}) matches the recipe's",
            hits.join(", ")
        ));
    }
    (score / 2.0_f64).min(1.0)
}

fn fields_share(r: &LoadedRecipe, facts: &Facts, reasons: &mut Vec<String>) -> f64 {
    let Some(fields) = facts.fields.as_ref().filter(|f| !f.is_empty()) else {
        return 0.5;
    };
    let used = r
        .meta
        .fields
        .iter()
        .filter(|f| fields.contains(f.as_str()))
        .count();
    reasons.push(format!(
        "reads {used} of the form's {} fields",
        fields.len()
    ));
    used as f64 / fields.len() as f64
}

/// The content words of the component's own texts (heading, intro, button
/// label…): not paths, addresses or the form's field list.
fn config_words(config: &Map<String, Json>) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in config {
        if matches!(key.as_str(), "anchor" | "success_path" | "fields") {
            continue;
        }
        if let Some(text) = value.as_str()
            && !text.starts_with('/')
            && !text.contains("://")
        {
            for word in text.split(|c: char| !c.is_alphanumeric()) {
                let lower = word.to_lowercase();
                if lower.len() >= 4 && !STOP.contains(&lower.as_str()) {
                    out.entry(stem(&lower)).or_insert(lower);
                }
            }
        }
    }
    out
}

const STOP: &[&str] = &[
    "about", "after", "also", "from", "have", "into", "just", "more", "only", "over", "than",
    "that", "their", "them", "then", "they", "this", "what", "when", "where", "which", "will",
    "with", "within", "your", "yours", "ours", "send", "tell", "free", "here", "help", "each",
    "every", "those", "these", "there", "until", "while", "team", "teams", "them",
];

/// Lowercase words of four letters or more, crudely stemmed (`booking` and
/// `books` are `book`), without common words.
fn text_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.len() >= 4 && !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(root) = word.strip_suffix(suffix)
            && root.len() >= 4
        {
            return root.to_string();
        }
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_stemmed_and_common_ones_dropped() {
        let w = text_words("Book your free consultations; booking opens soon!");
        assert!(w.contains("book") && w.contains("consultation") && w.contains("open"));
        assert!(!w.contains("your") && !w.contains("free"));
    }

    #[test]
    fn paths_and_field_lists_are_not_wording() {
        let mut c = Map::new();
        c.insert("success_path".into(), Json::from("/quote-thanks"));
        c.insert("heading".into(), Json::from("Request a quote"));
        c.insert("button_href".into(), Json::from("https://x.example/quote"));
        let words = config_words(&c);
        let w: Vec<&str> = words.values().map(String::as_str).collect();
        assert_eq!(w, ["quote", "request"]);
    }
}
