//! A site's one stylesheet: the tokens written from its variables, then
//! `templates/base.css`, the `component.css` of each component it uses, and its
//! template's `style.css`; minified.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value as Json;

use super::resolve::ResolvedSite;
use crate::model::variable::ValueType;
use crate::workspace::{Origin, Workspace};

/// Builds the stylesheet of `site`.
pub fn stylesheet(ws: &Workspace, site: &ResolvedSite) -> String {
    let mut out = tokens(site);
    let base_origin = if ws.root.join("templates/base.css").is_file() {
        Origin::Workspace
    } else {
        Origin::Builtin
    };
    push_file(&mut out, ws.template_file(base_origin, "base.css"));
    let used: BTreeSet<&str> = site
        .pages
        .iter()
        .flat_map(|p| p.instances.iter().map(|i| i.component.as_str()))
        .collect();
    for id in used {
        if let Some(doc) = ws.components.get(id) {
            let origin = ws.file(doc.file).origin;
            push_file(
                &mut out,
                ws.template_file(origin, &format!("components/{id}/component.css")),
            );
        }
    }
    push_file(
        &mut out,
        ws.template_file(
            site.template_origin,
            &format!("sites/{}/style.css", site.template),
        ),
    );
    minify(&out)
}

fn push_file(out: &mut String, bytes: Option<Vec<u8>>) {
    if let Some(text) = bytes.and_then(|b| String::from_utf8(b).ok()) {
        out.push_str(&text);
        out.push('\n');
    }
}

/// The `:root` rule of the site's colour and font variables: `--primary-color`
/// and `--on-primary-color` (black or white, whichever contrasts more), `--font`.
pub fn tokens(site: &ResolvedSite) -> String {
    let mut out = String::from(":root{");
    for (name, spec) in &site.specs {
        let Some(value) = site.vars.get(name).and_then(Json::as_str) else {
            continue;
        };
        let prop = name.replace('_', "-");
        match spec.kind {
            ValueType::Color if crate::validate::values::is_color(value) => {
                let _ = write!(out, "--{prop}:{value};");
                if let Some(on) = text_on(value) {
                    let _ = write!(out, "--on-{prop}:{on};");
                }
            }
            ValueType::Font => {
                let _ = write!(out, "--{prop}:{};", font_stack(value));
            }
            _ => {}
        }
    }
    out.push_str("}\n");
    out
}

/// A font stack with only the characters a stack needs: a value cannot close the
/// rule or inject another.
fn font_stack(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| c.is_alphanumeric() || " ,-_.'\"".contains(*c))
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        "system-ui,sans-serif".into()
    } else {
        clean.to_string()
    }
}

/// Black or white, whichever contrasts more with the hex colour `bg`.
pub fn text_on(bg: &str) -> Option<&'static str> {
    let rgb = parse_hex(bg)?;
    Some(
        if contrast(rgb, (0, 0, 0)) >= contrast(rgb, (255, 255, 255)) {
            "#000"
        } else {
            "#fff"
        },
    )
}

fn parse_hex(text: &str) -> Option<(u8, u8, u8)> {
    let hex = text.strip_prefix('#')?;
    let digits: Vec<u8> = hex
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    match digits.len() {
        3 | 4 => Some((digits[0] * 17, digits[1] * 17, digits[2] * 17)),
        6 | 8 => Some((
            digits[0] * 16 + digits[1],
            digits[2] * 16 + digits[3],
            digits[4] * 16 + digits[5],
        )),
        _ => None,
    }
}

/// WCAG 2.1 relative luminance.
fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
}

/// WCAG 2.1 contrast ratio of two colours (1 to 21).
pub fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Removes comments and the whitespace CSS does not need. Strings are kept as
/// they are; spaces around `+` and `-` stay (`calc()` needs them).
pub fn minify(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut chars = css.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                pending_space = true;
            }
            '"' | '\'' => {
                flush_space(&mut out, &mut pending_space, c);
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if d == c {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => pending_space = true,
            '{' | '}' | ';' | ',' | ':' | '>' | '(' | ')' => {
                // No space needed before these, except before `(` after `and`
                // (`and (min-width…)` must keep it) and before `:` (`a :hover`
                // differs from `a:hover`; declarations are written `color: red`).
                let keep = match c {
                    '(' => out.ends_with("and") || out.ends_with("not") || out.ends_with("or"),
                    ':' => !out.is_empty() && !out.ends_with(['{', '}', ';', ',', '>', '(']),
                    _ => false,
                };
                if c == '}' && out.ends_with(';') {
                    out.pop();
                }
                if keep && pending_space {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
                // After these, whitespace is never needed (`)` may be followed by
                // a word in a selector or value, so it keeps one).
                if c != ')' {
                    while chars.peek().is_some_and(|d| d.is_whitespace()) {
                        chars.next();
                    }
                }
            }
            c => {
                flush_space(&mut out, &mut pending_space, c);
                out.push(c);
            }
        }
    }
    out.trim().to_string()
}

fn flush_space(out: &mut String, pending: &mut bool, _next: char) {
    if *pending && !out.is_empty() && !out.ends_with(['{', '}', ';', ',', ':', '>', '(']) {
        out.push(' ');
    }
    *pending = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_meaning() {
        let css = "/* c */\n:root{--x:1}\n/* d */\n:root{--y:2}\n.a  >  .b , .c {\n  color : red ;\n  margin: calc(1px + 2px) 0;\n  content: \"a  ;  b\";\n}\n@media (min-width: 40rem) and (max-width: 60rem) {\n  .d :hover { color: blue; }\n  .e:focus-visible { outline: 2px solid; }\n}\n";
        assert_eq!(
            minify(css),
            ":root{--x:1}:root{--y:2}.a>.b,.c{color :red;margin:calc(1px + 2px) 0;content:\"a  ;  b\"}@media(min-width:40rem) and (max-width:60rem){.d :hover{color:blue}.e:focus-visible{outline:2px solid}}"
        );
    }

    #[test]
    fn text_on_a_colour_takes_the_better_of_black_and_white() {
        assert!(contrast((255, 255, 255), (0, 0, 0)) > 20.9);
        let navy = parse_hex("#0f4c81").expect("hex");
        assert!(contrast(navy, (255, 255, 255)) > contrast(navy, (0, 0, 0)));
        assert_eq!(parse_hex("#fa0"), Some((255, 170, 0)));
        assert_eq!(
            font_stack("Inter;}</style>, sans-serif"),
            "Interstyle, sans-serif"
        );
    }
}
