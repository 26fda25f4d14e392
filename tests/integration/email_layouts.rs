//! Email layouts and CSS: the demo's customer story is written inside the
//! `northwind` layout and styled by class; a message built from it carries the
//! layout's frame and footer, every rule written into `style` attributes (and
//! `@media` kept in a `<style>`), and the layout's text frame around its text.
//! A template naming a layout that does not exist, and a layout that does not
//! place `{{ content }}`, fail validation where they are written; a template
//! that fails to render names itself, its part, the line and the expression.

use crate::support::{demo, run, validate_json};

#[test]
fn a_layout_frames_the_email_and_its_css_is_inlined() {
    let dir = demo();
    let d = dir.path();
    let out = run(&["emails", "preview", "case-study", "--part", "html"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        html.contains("<div class=\"frame\" style=\"font-family: Inter"),
        "the layout's frame, styled: {html}"
    );
    assert!(
        html.contains("class=\"button\"") && html.contains("background: #0f4c81"),
        "the template's classes, styled by the layout's CSS: {html}"
    );
    assert!(html.contains("<style>@media"), "{html}");
    assert!(
        html.contains("Torstraße 140"),
        "the layout's footer: {html}"
    );
    assert!(
        html.matches("/u/").count() == 1,
        "one unsubscribe link, the layout's (none added): {html}"
    );
    let out = run(&["emails", "preview", "case-study", "--part", "text"], d);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nHi Ada,"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("Torstraße 140, 10119 Berlin, Germany"),
        "the layout's text frame: {text}"
    );
}

#[test]
fn broken_layouts_and_templates_are_named_where_they_fail() {
    let dir = demo();
    let d = dir.path();
    let path = d.join("templates/emails/case-study.yaml");
    let template = std::fs::read_to_string(&path).expect("template");
    std::fs::write(
        &path,
        template.replace("layout: northwind", "layout: northwnd"),
    )
    .expect("write");
    std::fs::write(
        d.join("templates/emails/layouts/bare.yaml"),
        "name: Bare\nhtml: <div>{{ workspace.name }}</div>\n",
    )
    .expect("layout");
    let (code, diags) = validate_json(d);
    assert_eq!(code, 1, "{diags:#?}");
    let missing = diags
        .iter()
        .find(|x| x["file"] == "templates/emails/case-study.yaml")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert!(
        missing["message"]
            .as_str()
            .is_some_and(|m| m.contains("no email layout `northwnd`")),
        "{missing:#}"
    );
    assert!(
        missing["help"]
            .as_str()
            .is_some_and(|m| m.contains("northwind")),
        "{missing:#}"
    );
    let line = template
        .lines()
        .position(|l| l.starts_with("layout:"))
        .map(|i| i + 1);
    assert_eq!(missing["line"].as_u64(), line.map(|l| l as u64));
    assert!(
        diags
            .iter()
            .any(|x| x["file"] == "templates/emails/layouts/bare.yaml"
                && x["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("{{ content }}"))),
        "{diags:#?}"
    );

    // At render time: the template, the part, the line and the expression.
    let dir = demo();
    let d = dir.path();
    std::fs::write(
        d.join("templates/emails/broken.yaml"),
        "name: Broken\nsubject: Hi\nhtml: |\n  <p>one</p>\n  <p>{{ contact.name | upper }}</p>\n  <p>{{ 1 / 0 }}</p>\n",
    )
    .expect("template");
    let out = run(&["emails", "preview", "broken"], d);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("email template `broken`, html: line 3") && err.contains("1 / 0"),
        "{err}"
    );
}
