// node tools/lighthouse_batch.mjs OUT.json NAME=URL...
// Runs Lighthouse 12 (mobile, simulated throttling, the four categories) on each page, `runs` times
// (tools/lighthouse-thresholds.json), in one headless Debian Chromium that can resolve no host but
// 127.0.0.1. Writes {NAME: {url, runs: [{scores, failing, status, runtimeError, warnings, ms}]}}.
// Exit 0 when every run finished, 2 when a run hit a runtime error (the gate reports which).
import fs from 'node:fs';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';

const [outPath, ...pairs] = process.argv.slice(2);
if (!outPath || pairs.length === 0 || !pairs.every((p) => /^[\w-]+=https?:\/\//.test(p))) {
  console.error('usage: node tools/lighthouse_batch.mjs OUT.json NAME=URL...');
  process.exit(64);
}
const thresholdsFile = new URL('./lighthouse-thresholds.json', import.meta.url);
const thresholds = JSON.parse(fs.readFileSync(thresholdsFile, 'utf8'));
const pages = pairs.map((p) => p.split(/=(.*)/s).slice(0, 2));
const chromeFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'];
// ignoreStatusCode: the not-found page is served with 404 on purpose; any other page's status is
// still judged by the http-status-code audit, which the gate excuses only on the not-found page.
const config = {extends: 'lighthouse:default', settings: {
  onlyCategories: Object.keys(thresholds.minimum), ignoreStatusCode: true}};

/** One line per table row or blocking directive of a failing audit, so the gate can say why. */
function describeItem(item) {
  const source = item.source ?? item.node;
  const parts = [typeof source === 'string' ? source : source?.snippet, item.description,
    item.sourceLocation?.url ?? item.url ?? source?.url];
  return parts.filter(Boolean).join(' ') || JSON.stringify(item).slice(0, 200);
}

/** Audits with weight that scored below 1 in this report, by category. */
function failingAudits(lhr) {
  const failing = [];
  for (const category of Object.values(lhr.categories)) {
    for (const ref of category.auditRefs) {
      const audit = lhr.audits[ref.id];
      if (ref.weight > 0 && audit.score !== null && audit.score < 1) {
        failing.push({category: category.id, id: ref.id, score: audit.score, title: audit.title,
          displayValue: audit.displayValue ?? null, explanation: audit.explanation ?? null,
          items: (audit.details?.items ?? []).slice(0, 10).map(describeItem)});
      }
    }
  }
  return failing;
}

/** The main document's HTTP status, from the network-requests audit. */
function documentStatus(lhr) {
  const items = lhr.audits['network-requests']?.details?.items ?? [];
  const doc = items.find((i) => i.resourceType === 'Document') ?? items[0];
  return doc?.statusCode ?? null;
}

/** The performance metrics behind the score, in ms (CLS unitless), for the note and for diagnosis. */
function metrics(lhr) {
  const ids = ['first-contentful-paint', 'largest-contentful-paint', 'total-blocking-time',
    'cumulative-layout-shift', 'speed-index'];
  return Object.fromEntries(ids.map((id) => [id, lhr.audits[id]?.numericValue ?? null]));
}

const out = Object.fromEntries(pages.map(([name, url]) => [name, {url, runs: []}]));
const chromePath = process.env.CHROME_PATH || 'chromium';
const chrome = await chromeLauncher.launch({chromePath, chromeFlags});
try {
  for (let run = 1; run <= thresholds.runs; run++) {
    for (const [name, url] of pages) {
      const t0 = Date.now();
      const {lhr} = await lighthouse(url, {port: chrome.port, logLevel: 'error'}, config);
      const scores = Object.fromEntries(Object.entries(lhr.categories).map(([id, c]) => [id, c.score]));
      out[name].runs.push({url: lhr.finalDisplayedUrl, scores, metrics: metrics(lhr), failing: failingAudits(lhr),
        status: documentStatus(lhr), runtimeError: lhr.runtimeError?.code ?? null, warnings: lhr.runWarnings,
        ms: Date.now() - t0});
      const ms = Date.now() - t0;
      console.error(`lighthouse run ${run}/${thresholds.runs} ${name}: ${JSON.stringify(scores)} in ${ms} ms`);
    }
  }
} finally {
  await chrome.kill();
}
fs.writeFileSync(outPath, JSON.stringify(out, null, 2) + '\n');
process.exitCode = Object.values(out).some((p) => p.runs.some((r) => r.runtimeError)) ? 2 : 0;
