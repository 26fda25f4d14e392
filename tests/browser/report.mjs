// A self-contained HTML report in a real browser: opens the file offline, lists
// every URL it tried to load (each one is aborted, so nothing leaves the
// machine), collects console errors, and screenshots the page and each
// `svg.chart` to measure how much was drawn and how much of it is in the
// chart palette. Prints one JSON object; the Rust test judges it.
//   node report.mjs /abs/path/report.html /abs/out/dir
// Writes report.png and chart-<index>.png into the out dir. `data:` and
// `about:` URLs are not counted as requests: inline images are allowed.
// Exits non-zero only when the check itself fails (bad arguments, no browser).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";
import { inflateSync } from "node:zlib";

// Mirrors PALETTE in src/report/svg.rs: keep the two in step.
const PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2"];
const PALETTE_RGB = PALETTE.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
const INK_THRESHOLD = 24; // a pixel this far from white in any channel is drawn on
const PALETTE_TOLERANCE = 40; // per channel, to allow for antialiasing

const [file, outDir] = process.argv.slice(2);
if (!file || !outDir || !isAbsolute(file) || !isAbsolute(outDir)) {
  console.error("usage: node report.mjs /abs/path/report.html /abs/out/dir");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const fileUrl = pathToFileURL(file).href;

// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are).
function decodePng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error("not a PNG");
  let width, height, depth, type, interlace;
  const idat = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    const kind = buf.toString("latin1", at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + len);
    if (kind === "IHDR") {
      [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)];
      [depth, type, interlace] = [data[8], data[9], data[12]];
    } else if (kind === "IDAT") idat.push(data);
    else if (kind === "IEND") break;
    at += 12 + len;
  }
  if (depth !== 8 || (type !== 2 && type !== 6) || interlace !== 0) {
    throw new Error(`unsupported PNG: depth ${depth}, colour type ${type}, interlace ${interlace}`);
  }
  const bpp = type === 6 ? 4 : 3;
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[row + x - bpp] : 0;
      const b = y > 0 ? px[row - stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[row - stride + x - bpp] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter}`);
      px[row + x] = (raw[src + x] + pred) & 0xff;
    }
  }
  return { width, height, bpp, px };
}

// ink: share of pixels visibly not white; palette_pixels: pixels near a series colour.
function measure(png) {
  const { width, height, bpp, px } = decodePng(png);
  let ink = 0;
  let palette = 0;
  for (let i = 0; i < width * height * bpp; i += bpp) {
    // Translucent pixels are seen as they would be on a white page.
    const alpha = bpp === 4 ? px[i + 3] / 255 : 1;
    const rgb = [0, 1, 2].map((k) => px[i + k] * alpha + 255 * (1 - alpha));
    if (rgb.some((v) => 255 - v > INK_THRESHOLD)) ink++;
    if (PALETTE_RGB.some((p) => p.every((v, k) => Math.abs(v - rgb[k]) <= PALETTE_TOLERANCE))) palette++;
  }
  const total = width * height;
  return { ink: total ? Math.round((ink / total) * 1e4) / 1e4 : 0, palette_pixels: palette };
}

const requests = new Set();
const record = (url) => {
  if (url !== fileUrl && !url.startsWith("data:") && !url.startsWith("about:")) requests.add(url);
};
const consoleErrors = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url === fileUrl) return route.continue();
    record(url);
    return route.abort();
  });
  page.on("request", (r) => record(r.url()));
  page.on("websocket", (ws) => record(ws.url()));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e.message || e)));
  await page.goto(fileUrl, { waitUntil: "load" });

  await page.screenshot({ path: join(outDir, "report.png"), fullPage: true });
  const charts = [];
  const svgs = await page.locator("svg.chart").all();
  for (const [index, svg] of svgs.entries()) {
    const info = await svg.evaluate((el) => {
      const box = el.getBoundingClientRect();
      const title = [...el.children].find((c) => c.tagName.toLowerCase() === "title");
      return {
        kind: el.getAttribute("data-kind") || "",
        title: title ? title.textContent : "",
        width: Math.round(box.width),
        height: Math.round(box.height),
      };
    });
    const png = await svg.screenshot({ path: join(outDir, `chart-${index}.png`) });
    charts.push({ index, ...info, ...measure(png) });
  }
  const pageHeight = await page.evaluate(() => document.documentElement.scrollHeight);
  const result = { requests: [...requests], console_errors: consoleErrors, charts, page_height: pageHeight };
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
