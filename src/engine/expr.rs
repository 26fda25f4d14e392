//! Expressions and templates at run time: minijinja over `trigger`, `contact`,
//! `steps.<id>`, `vars` and friends.
//!
//! One environment serves every workflow, so compiled expressions own no borrow
//! and live in their [`Program`](super::program::Program). Text that is one
//! `{{ expression }}` and nothing else is compiled as an expression too (most values
//! are of that shape); other templates are parsed once and kept by their text
//! (see [`render_cached`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use minijinja::value::Serde;
use minijinja::{Environment, Expression, UndefinedBehavior, Value};
use serde_json::Value as Json;

/// Work one expression or template may do before it is stopped, so a user's
/// template cannot spin forever.
const FUEL: u64 = 100_000;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // `trigger.fields.company` on a form without that field is undefined, not an
    // error: conditions and `default()` handle missing data; typos are caught by
    // `funnel validate`.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
});

/// Like [`ENV`] but escaping every value for HTML (email and page bodies).
static HTML_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_formatter(html_formatter);
    env
});

/// Like [`ENV`] but writing every `$` of an inserted value as `$$`: text bound for
/// a request, where `${NAME}` is expanded from the environment afterwards, so a
/// value that came from data can never name a secret.
static REQUEST_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_formatter(|out, _state, value| {
        if !value.is_undefined() {
            write!(out, "{}", escape_dollars(&value.to_string()))
                .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure))?;
        }
        Ok(())
    });
    env
});

/// Most compiled templates kept per environment before the cache starts over;
/// far more than a workspace's workflows and emails have.
const MAX_CACHED: usize = 1024;

/// Templates compiled from their text, one cache per environment: a step's text
/// or an email's body renders over and over, and parsing it cost more than
/// rendering it. Each holds its environment and how many templates it has.
static CACHES: LazyLock<[Mutex<(Environment<'static>, usize)>; 3]> = LazyLock::new(|| {
    [
        Mutex::new((ENV.clone(), 0)),
        Mutex::new((HTML_ENV.clone(), 0)),
        Mutex::new((REQUEST_ENV.clone(), 0)),
    ]
});

/// Which environment a template renders in.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text = 0,
    Html = 1,
    Request = 2,
}

/// Renders `text` as a template of `kind`'s environment, compiling it on its
/// first use only. A syntax error is not cached: it fails again next time.
fn render_cached(kind: Kind, text: &str, ctx: &Value) -> Result<String, minijinja::Error> {
    let mut guard = CACHES[kind as usize]
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (env, count) = &mut *guard;
    if env.get_template(text).is_err() {
        if *count >= MAX_CACHED {
            env.clear_templates();
            *count = 0;
        }
        env.add_template_owned(text.to_string(), text.to_string())?;
        *count += 1;
    }
    env.get_template(text)?.render(ctx)
}

/// `$` as `$$`: data inserted into request text (see [`REQUEST_ENV`]).
pub fn escape_dollars(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('$') {
        std::borrow::Cow::Owned(text.replace('$', "$$"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Every string inside a JSON value with its `$` escaped.
fn escape_json(value: Json) -> Json {
    match value {
        Json::String(s) => Json::String(escape_dollars(&s).into_owned()),
        Json::Array(items) => Json::Array(items.into_iter().map(escape_json).collect()),
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (escape_dollars(&k).into_owned(), escape_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Escapes what HTML needs escaped (`&`, `<`, `>`, `"`, `'`) and nothing more:
/// minijinja's default also escapes `/`, which makes every URL unreadable.
pub fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.is_safe() || !matches!(state.auto_escape(), minijinja::AutoEscape::Html) {
        return minijinja::escape_formatter(out, state, value);
    }
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// Renders HTML template text, escaping every value it inserts.
pub fn render_html(text: &str, ctx: &Value) -> Result<String, ExprError> {
    render_cached(Kind::Html, text, ctx).map_err(|e| fail("template", text, &e))
}

/// A run-time expression or template failure, with the text that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} `{text}`: {message}")]
pub struct ExprError {
    pub what: &'static str,
    pub text: String,
    pub message: String,
}

fn fail(what: &'static str, text: &str, e: &minijinja::Error) -> ExprError {
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message = format!("{message}: {detail}");
    }
    // Where in the text: the line, and the expression that failed.
    if let Some(snippet) = e
        .range()
        .and_then(|r| text.get(r))
        .filter(|s| !s.is_empty() && s.len() <= 120)
    {
        message = format!("{message} at `{snippet}`");
    }
    if let Some(line) = e.line()
        && text.contains('\n')
    {
        message = format!("line {line}: {message}");
    }
    ExprError {
        what,
        text: text.to_string(),
        message,
    }
}

/// The values expressions see, as one JSON object (`trigger`, `contact`, ...).
pub fn context(scope: &Json) -> Value {
    Value::from(Serde(scope))
}

/// Compiled expressions, keyed by their source text.
#[derive(Default)]
pub struct Compiled {
    exprs: HashMap<String, Expression<'static, 'static>>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("exprs", &self.exprs.len())
            .finish()
    }
}

/// If `text` is exactly `{{ expr }}`, the expression.
fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

/// Whether the text has template syntax at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Compiled {
    /// Compiles an expression once; later calls reuse it.
    pub fn prepare(&mut self, source: &str) -> Result<(), ExprError> {
        if !self.exprs.contains_key(source) {
            let expr = ENV
                .compile_expression_owned(source.to_string())
                .map_err(|e| fail("expression", source, &e))?;
            self.exprs.insert(source.to_string(), expr);
        }
        Ok(())
    }

    /// Compiles what a template text needs ahead of time (a sole expression).
    pub fn prepare_template(&mut self, text: &str) -> Result<(), ExprError> {
        match sole_expression(text) {
            Some(expr) => self.prepare(expr),
            None => Ok(()),
        }
    }

    /// Evaluates an expression to a value.
    pub fn eval(&self, source: &str, ctx: &Value) -> Result<Value, ExprError> {
        match self.exprs.get(source) {
            Some(expr) => expr.eval(ctx.clone()),
            None => ENV
                .compile_expression(source)
                .and_then(|e| e.eval(ctx.clone())),
        }
        .map_err(|e| fail("expression", source, &e))
    }

    /// Evaluates a condition: true or false by minijinja's truthiness.
    pub fn condition(&self, source: &str, ctx: &Value) -> Result<bool, ExprError> {
        Ok(self.eval(source, ctx)?.is_true())
    }

    /// Renders template text; text without template syntax is returned as is.
    pub fn render(&self, text: &str, ctx: &Value) -> Result<String, ExprError> {
        self.render_in(text, ctx, Target::Text)
    }

    /// Renders text bound for a request (URL, header, body): what the file wrote
    /// is kept, with its `${NAME}` references; every `$` of an inserted value is
    /// written `$$`, so data cannot name a secret (see
    /// [`Resolved::expand`](super::remote::Resolved::expand)).
    pub fn render_request(&self, text: &str, ctx: &Value) -> Result<String, ExprError> {
        self.render_in(text, ctx, Target::Request)
    }

    fn render_in(&self, text: &str, ctx: &Value, target: Target) -> Result<String, ExprError> {
        if !is_template(text) {
            return Ok(text.to_string());
        }
        if let Some(expr) = sole_expression(text) {
            let v = self.eval(expr, ctx).map_err(|e| ExprError {
                what: "template",
                text: text.to_string(),
                message: e.message,
            })?;
            if v.is_undefined() || v.is_none() {
                return Ok(String::new());
            }
            return Ok(match target {
                Target::Text => v.to_string(),
                Target::Request => escape_dollars(&v.to_string()).into_owned(),
            });
        }
        let kind = match target {
            Target::Text => Kind::Text,
            Target::Request => Kind::Request,
        };
        render_cached(kind, text, ctx).map_err(|e| fail("template", text, &e))
    }

    /// Renders every string inside a JSON value. A string that is one `{{ expr }}`
    /// keeps the expression's type (a number stays a number, a list a list).
    pub fn render_tree(&self, value: &Json, ctx: &Value) -> Result<Json, ExprError> {
        self.tree_in(value, ctx, Target::Text)
    }

    /// [`Compiled::render_tree`] for a request's body: inserted values escaped as
    /// in [`Compiled::render_request`].
    pub fn render_request_tree(&self, value: &Json, ctx: &Value) -> Result<Json, ExprError> {
        self.tree_in(value, ctx, Target::Request)
    }

    fn tree_in(&self, value: &Json, ctx: &Value, target: Target) -> Result<Json, ExprError> {
        Ok(match value {
            Json::String(s) => match sole_expression(s) {
                Some(expr) if is_template(s) => {
                    let v = self.eval(expr, ctx)?;
                    match (v.is_undefined(), target) {
                        (true, _) => Json::Null,
                        (false, Target::Text) => to_json(&v),
                        (false, Target::Request) => escape_json(to_json(&v)),
                    }
                }
                _ => Json::String(self.render_in(s, ctx, target)?),
            },
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.tree_in(v, ctx, target))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.tree_in(v, ctx, target)?)))
                    .collect::<Result<_, ExprError>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// Where rendered text goes: plain text, or a request (data's `$` escaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Text,
    Request,
}

/// A minijinja value as JSON (undefined becomes null).
pub fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cached_templates_render_each_context_and_keep_their_escaping() {
        let c = Compiled::default();
        let text = "Hi {{ name }}!";
        for name in ["Ann", "<b>Bo</b>"] {
            let ctx = context(&json!({"name": name}));
            assert_eq!(c.render(text, &ctx).expect("text"), format!("Hi {name}!"));
        }
        // The same text in the HTML environment escapes; in a request's, `$` doubles.
        let ctx = context(&json!({"name": "<b>$HOME</b>"}));
        assert_eq!(
            render_html(text, &ctx).expect("html"),
            "Hi &lt;b&gt;$HOME&lt;/b&gt;!"
        );
        assert_eq!(
            c.render_request(text, &ctx).expect("request"),
            "Hi <b>$$HOME</b>!"
        );
        assert_eq!(c.render(text, &ctx).expect("text"), "Hi <b>$HOME</b>!");
        // A broken template fails every time, not only the first.
        for _ in 0..2 {
            assert!(c.render("{% if %}", &ctx).is_err());
        }
    }

    #[test]
    fn conditions_templates_and_typed_trees() {
        let mut c = Compiled::default();
        c.prepare("contact.score >= 50 and 'vip' in contact.tags")
            .expect("compiles");
        let ctx = context(&json!({"contact": {"score": 60, "tags": ["vip"], "name": "Ada"}}));
        assert!(
            c.condition("contact.score >= 50 and 'vip' in contact.tags", &ctx)
                .expect("evaluates")
        );
        assert_eq!(
            c.render("Hi {{ contact.name }}!", &ctx).expect("renders"),
            "Hi Ada!"
        );
        assert_eq!(
            c.render_tree(&json!({"n": "{{ contact.score }}", "s": "x"}), &ctx)
                .expect("renders"),
            json!({"n": 60, "s": "x"})
        );
        // Missing data is undefined, not an error.
        assert_eq!(
            c.render("{{ trigger.fields.company }}", &ctx)
                .expect("renders"),
            ""
        );
        let err = c.condition("contact.score >=", &ctx).expect_err("syntax");
        assert!(err.to_string().contains("contact.score >="), "{err}");
    }
}
