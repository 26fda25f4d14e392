//! Contact filters typed as one line of words, as the TUI's filter prompt takes
//! them: `tag:vip list:newsletter status:active stage:lead source:contact-form
//! score>=50 plan=pro segment:engaged`. Every word must hold. The result is the
//! same [`Condition`] a segment file compiles to, so a filter and a segment can
//! never disagree about who matches.

use serde_json::Value as Json;

use crate::model::contacts::{Condition, ContactStatus, FieldCondition, Range};
use crate::model::scalar::Ident;
use crate::model::workflow::LifecycleStage;

/// A word that is not a filter: where it starts (1-based column) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

/// The condition of a filter line; `None` for an empty line (every contact).
pub fn parse(line: &str) -> Result<Option<Condition>, FilterError> {
    let mut all = Vec::new();
    for (start, word) in words(line) {
        all.push(term(word).map_err(|message| FilterError {
            column: start + 1,
            message,
        })?);
    }
    Ok(match all.len() {
        0 => None,
        1 => all.pop(),
        _ => Some(Condition::All(all)),
    })
}

/// The words of a line with their byte offsets.
fn words(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_whitespace().map(move |w| {
        let offset = w.as_ptr() as usize - line.as_ptr() as usize;
        (line[..offset].chars().count(), w)
    })
}

const HINT: &str = "a filter is words like tag:vip list:newsletter segment:engaged \
     status:active stage:lead source:contact-form score>=50 or field=value";

fn term(word: &str) -> Result<Condition, String> {
    if let Some(rest) = word.strip_prefix("score") {
        return score(rest);
    }
    if let Some((key, value)) = word.split_once(':') {
        if value.is_empty() {
            return Err(format!("`{key}:` needs a value; {HINT}"));
        }
        return match key {
            "tag" => Ok(Condition::Tag(value.to_string())),
            "list" => Ok(Condition::List(Ident(value.to_string()))),
            "segment" => Ok(Condition::Segment(Ident(value.to_string()))),
            "status" => enum_value::<ContactStatus>(value, "status").map(Condition::Status),
            "stage" => enum_value::<LifecycleStage>(value, "stage").map(Condition::Stage),
            "source" => Ok(Condition::Any(
                ["source_component", "source_site", "source_workflow"]
                    .iter()
                    .map(|col| field_eq(col, Json::String(value.to_string())))
                    .collect(),
            )),
            _ => Err(format!("unknown filter `{key}:`; {HINT}")),
        };
    }
    if let Some((name, value)) = word.split_once('=')
        && !name.is_empty()
        && !value.is_empty()
    {
        return Ok(field_eq(name, typed(value)));
    }
    Err(format!("`{word}` is not a filter; {HINT}"))
}

fn field_eq(name: &str, value: Json) -> Condition {
    Condition::Field(FieldCondition {
        name: name.to_string(),
        eq: Some(value),
        ..FieldCondition::default()
    })
}

/// A value that reads as a number or a boolean is one.
fn typed(value: &str) -> Json {
    match value {
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        _ => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Json::String(value.to_string()), Json::Number),
    }
}

fn score(rest: &str) -> Result<Condition, String> {
    let (op, number) = [">=", "<=", ">", "<", "="]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|n| (*op, n)))
        .ok_or_else(|| format!("`score{rest}`: compare with >=, <=, >, < or =, as in score>=50"))?;
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number (score{op}…)"))?;
    let mut r = Range {
        gte: None,
        lte: None,
        gt: None,
        lt: None,
    };
    match op {
        ">=" => r.gte = Some(n),
        "<=" => r.lte = Some(n),
        ">" => r.gt = Some(n),
        "<" => r.lt = Some(n),
        _ => {
            r.gte = Some(n);
            r.lte = Some(n);
        }
    }
    Ok(Condition::Score(r))
}

fn enum_value<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(Json::String(value.to_string())).map_err(|_| {
        let known = match what {
            "status" => "active, unsubscribed, bounced, complained, erased",
            _ => "subscriber, lead, marketing_qualified, sales_qualified, opportunity, customer, evangelist, other",
        };
        format!("no {what} `{value}`; the {what}es are {known}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(line: &str) -> String {
        parse(line)
            .expect("parses")
            .map(|c| crate::crm::segment::label(&c))
            .unwrap_or_default()
    }

    #[test]
    fn every_word_is_one_condition_and_all_must_hold() {
        assert!(parse("   ").expect("empty").is_none());
        assert!(matches!(parse("tag:vip"), Ok(Some(Condition::Tag(t))) if t == "vip"));
        let all = parse("tag:vip status:active score>=50 plan=pro").expect("parses");
        assert!(matches!(all, Some(Condition::All(ref v)) if v.len() == 4));
        assert!(!label("stage:lead seats=3").is_empty());
    }

    #[test]
    fn a_bad_word_names_its_column_and_the_words_there_are() {
        let e = parse("tag:vip  colour:red").expect_err("unknown key");
        assert_eq!(e.column, 10);
        assert!(e.message.contains("unknown filter `colour:`"), "{e}");
        let e = parse("status:gone").expect_err("bad status");
        assert!(e.message.contains("active, unsubscribed"), "{e}");
        let e = parse("score>=lots").expect_err("not a number");
        assert!(e.message.contains("not a number"), "{e}");
        assert!(parse("tag:").is_err());
        assert!(parse("hello").is_err());
    }
}
