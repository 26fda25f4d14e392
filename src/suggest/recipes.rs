//! The recipe library. A recipe is a folder `recipes/<id>/` of three files:
//! `recipe.yaml` (what it is for: component, event, industries, goals, the
//! form fields and lists it uses), `workflow.yaml` and `test.yaml`, the last
//! two with the placeholders `__site__`, `__component__` and `__workflow__`
//! that [`LoadedRecipe::instantiate`] replaces. Built-in recipes are compiled
//! into the binary; a workspace's own `recipes/<id>/` adds one or replaces the
//! built-in recipe of the same id.

use std::collections::BTreeMap;
use std::path::Path;

use super::SuggestError;
use crate::model::recipe::Recipe;

/// Where a recipe comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin,
    Workspace,
}

/// A recipe with its texts.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub id: String,
    pub meta: Recipe,
    /// `workflow.yaml`, placeholders in.
    pub workflow: String,
    /// `test.yaml`, placeholders in.
    pub test: String,
    pub source: Source,
}

/// A recipe made concrete for one component instance of one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instantiated {
    pub workflow_id: String,
    pub workflow: String,
    pub test: String,
}

impl LoadedRecipe {
    /// The workflow and its test for `component` (an instance id) of `site`,
    /// written as workflow `workflow_id`.
    pub fn instantiate(&self, site: &str, component: &str, workflow_id: &str) -> Instantiated {
        let fill = |text: &str| {
            text.replace("__site__", site)
                .replace("__component__", component)
                .replace("__workflow__", workflow_id)
        };
        Instantiated {
            workflow_id: workflow_id.to_string(),
            // `recipes/<id>/workflow.yaml` is a folder deeper than
            // `workflows/<id>.yaml`: the written file's header points up once.
            workflow: fill(&self.workflow).replacen(
                "$schema=../../schema/workflow.schema.json",
                "$schema=../schema/workflow.schema.json",
                1,
            ),
            test: fill(&self.test),
        }
    }

    /// The trigger (type and event) and the step types in order, nested steps
    /// included: the recipe's shape, which no two recipes share.
    pub fn shape(&self) -> Result<(String, Vec<String>), SuggestError> {
        let file = format!("recipes/{}/workflow.yaml", self.id);
        let root = parse(&file, &self.workflow)?;
        let trigger = root.get("trigger").cloned().unwrap_or_default();
        let kind = trigger
            .get("type")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let event = trigger
            .get("event")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let mut steps = Vec::new();
        if let Some(list) = root.get("steps") {
            step_types(list, &mut steps);
        }
        Ok((format!("{kind}:{event}"), steps))
    }
}

fn step_types(node: &serde_json::Value, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Array(items) => {
            for item in items {
                if let Some(t) = item.get("type").and_then(|v| v.as_str()) {
                    out.push(t.to_string());
                }
                if let Some(obj) = item.as_object() {
                    // Branches in the order they are written: then/else,
                    // cases, parallel branches, loop bodies.
                    for (key, value) in obj {
                        if key != "type" && (value.is_array() || value.is_object()) {
                            step_types(value, out);
                        }
                    }
                }
            }
        }
        serde_json::Value::Object(map) => {
            for value in map.values() {
                step_types(value, out);
            }
        }
        _ => {}
    }
}

fn parse(file: &str, text: &str) -> Result<serde_json::Value, SuggestError> {
    let parsed = crate::yaml::parse(text);
    if let Some(p) = parsed.problems.first() {
        return Err(SuggestError::Recipe {
            file: file.to_string(),
            message: p.message.clone(),
        });
    }
    parsed
        .root
        .map(|r| r.to_json())
        .ok_or_else(|| SuggestError::Recipe {
            file: file.to_string(),
            message: "the file is empty".into(),
        })
}

fn read_meta(file: &str, text: &str) -> Result<Recipe, SuggestError> {
    let value = parse(file, text)?;
    serde_path_to_error::deserialize(value).map_err(|e| SuggestError::Recipe {
        file: file.to_string(),
        message: format!("at `{}`: {}", e.path(), e.inner()),
    })
}

/// Collects recipe folders from (path under `recipes/`, text) pairs.
fn assemble<'a>(
    files: impl Iterator<Item = (&'a str, String)>,
    source: &Source,
    into: &mut BTreeMap<String, LoadedRecipe>,
) -> Result<(), SuggestError> {
    let mut parts: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, text) in files {
        if let Some((id, name)) = path.split_once('/') {
            parts
                .entry(id.to_string())
                .or_default()
                .insert(name.to_string(), text);
        }
    }
    for (id, mut files) in parts {
        let mut take = |name: &str| {
            files.remove(name).ok_or_else(|| SuggestError::Recipe {
                file: format!("recipes/{id}/"),
                message: format!("the recipe has no `{name}`"),
            })
        };
        let meta_text = take("recipe.yaml")?;
        let workflow = take("workflow.yaml")?;
        let test = take("test.yaml")?;
        let meta = read_meta(&format!("recipes/{id}/recipe.yaml"), &meta_text)?;
        into.insert(
            id.clone(),
            LoadedRecipe {
                id,
                meta,
                workflow,
                test,
                source: source.clone(),
            },
        );
    }
    Ok(())
}

/// The built-in recipes, by id.
pub fn builtin() -> Result<BTreeMap<String, LoadedRecipe>, SuggestError> {
    let mut out = BTreeMap::new();
    assemble(
        crate::builtin::RECIPE_FILES
            .iter()
            .map(|(p, b)| (p, String::from_utf8_lossy(b).into_owned())),
        &Source::Builtin,
        &mut out,
    )?;
    Ok(out)
}

/// The recipes a workspace sees: the built-in ones, with the workspace's own
/// `recipes/<id>/` added or in place of the built-in one of the same id.
pub fn load(root: &Path) -> Result<BTreeMap<String, LoadedRecipe>, SuggestError> {
    let mut out = builtin()?;
    let dir = root.join("recipes");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let id = entry.file_name().to_string_lossy().into_owned();
        for name in ["recipe.yaml", "workflow.yaml", "test.yaml"] {
            let file = path.join(name);
            if let Ok(text) = std::fs::read_to_string(&file) {
                files.push((format!("{id}/{name}"), text));
            }
        }
    }
    let mut own = BTreeMap::new();
    assemble(
        files.iter().map(|(p, t)| (p.as_str(), t.clone())),
        &Source::Workspace,
        &mut own,
    )?;
    out.extend(own);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_loads_and_no_two_recipes_share_a_shape() {
        let all = builtin().expect("built-in recipes load");
        assert!(!all.is_empty());
        let mut seen: BTreeMap<(String, Vec<String>), String> = BTreeMap::new();
        for r in all.values() {
            let shape = r.shape().expect("shape");
            assert!(!shape.1.is_empty(), "{} has no steps", r.id);
            if let Some(other) = seen.insert(shape.clone(), r.id.clone()) {
                panic!(
                    "{} and {other} have the same trigger and steps: {shape:?}",
                    r.id
                );
            }
            assert!(r.workflow.contains("__site__"), "{}: no __site__", r.id);
            assert!(r.test.contains("__workflow__"), "{}: no __workflow__", r.id);
        }
    }

    #[test]
    fn instantiation_fills_every_placeholder() {
        let all = builtin().expect("built-in recipes load");
        for r in all.values() {
            let i = r.instantiate("demo", "contact-form", "w1");
            for text in [&i.workflow, &i.test] {
                assert!(!text.contains("__site__") && !text.contains("__component__"));
                assert!(!text.contains("__workflow__"));
            }
        }
    }

    #[test]
    fn a_broken_recipe_says_which_file_and_key() {
        let mut out = BTreeMap::new();
        let err = assemble(
            [
                ("x/recipe.yaml", "name: X\ndescription: d\ncomponent: cta\nevent: hover\nindustries: []\ngoals: []\n".to_string()),
                ("x/workflow.yaml", "name: x".to_string()),
                ("x/test.yaml", "workflow: __workflow__".to_string()),
            ]
            .into_iter(),
            &Source::Workspace,
            &mut out,
        )
        .expect_err("bad event");
        let text = err.to_string();
        assert!(
            text.contains("recipes/x/recipe.yaml") && text.contains("event"),
            "{text}"
        );
        let missing = assemble(
            [("y/recipe.yaml", String::new())].into_iter(),
            &Source::Workspace,
            &mut out,
        )
        .expect_err("missing files");
        assert!(missing.to_string().contains("workflow.yaml"), "{missing}");
    }
}
