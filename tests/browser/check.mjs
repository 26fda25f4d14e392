// Checks every page of the sites served by `funnel preview` instances:
//   node check.mjs OUT.json http://127.0.0.1:PORT/ [http://127.0.0.1:PORT2/ …]
// For each site: reads its sitemap-independent page list from /__pages (given on
// the command line as SITE_URL|/path,/path…), loads each page in headless
// Chromium at 320, 375, 768, 1024 and 1440 px, and records: horizontal scrolling,
// requests to any host but 127.0.0.1, and axe-core violations (WCAG 2.1 A and AA).
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const [out, ...targets] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const widths = [320, 375, 768, 1024, 1440];
const results = [];
for (const target of targets) {
  const [base, list] = target.split("|");
  for (const path of list.split(",")) {
    const url = new URL(path, base).toString();
    const r = { url, overflow: [], external: [], axe: [] };
    for (const width of widths) {
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await context.newPage();
      page.on("request", (req) => {
        const host = new URL(req.url()).hostname;
        if (!["127.0.0.1", "localhost"].includes(host) && !req.url().startsWith("data:")) {
          r.external.push(req.url());
        }
      });
      await page.goto(url, { waitUntil: "load" });
      const scroll = await page.evaluate(() => {
        const d = document.documentElement;
        return { sw: d.scrollWidth, cw: d.clientWidth };
      });
      if (scroll.sw > scroll.cw) r.overflow.push({ width, scrollWidth: scroll.sw });
      if (width === 375 || width === 1440) {
        await page.addScriptTag({ content: axeSource });
        const axe = await page.evaluate(async () => {
          const res = await window.axe.run(document, {
            runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
          });
          return res.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
        });
        for (const v of axe) r.axe.push({ width, ...v });
      }
      await context.close();
    }
    r.external = [...new Set(r.external)];
    results.push(r);
    process.stderr.write(`${url}: ${r.overflow.length} overflow, ${r.external.length} external, ${r.axe.length} axe\n`);
  }
}
await browser.close();
writeFileSync(out, JSON.stringify(results, null, 2));
