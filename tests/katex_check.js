#!/usr/bin/env node
// Render every $…$ and $$…$$ of Markdown files with KaTeX in strict mode; print each failure, exit 1 on any.
// Usage: node tests/katex_check.js FILE.md …   (katex from the local or the global npm folder)
"use strict";
const fs = require("fs");
const path = require("path");

function loadKatex() {
  try {
    return require("katex");
  } catch (e) {
    const root = require("child_process").execSync("npm root -g", { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return require(path.join(root, "katex"));
  }
}

// The math of a Markdown text: code fences and code spans skipped, \$ is a literal dollar.
function formulas(text) {
  const found = [];
  const lines = text.split("\n");
  let fenced = false;
  const kept = lines.map((line) => {
    if (/^\s*(```|~~~)/.test(line)) { fenced = !fenced; return ""; }
    return fenced ? "" : line;
  });
  const body = kept.join("\n");
  let i = 0, line = 1;
  while (i < body.length) {
    const c = body[i];
    if (c === "\n") { line++; i++; continue; }
    if (c === "\\") { i += 2; continue; }
    if (c === "`") {
      const end = body.indexOf("`", i + 1);
      if (end < 0) { i++; continue; }
      line += (body.slice(i, end).match(/\n/g) || []).length;
      i = end + 1; continue;
    }
    if (c === "$") {
      const display = body[i + 1] === "$";
      const open = display ? 2 : 1;
      let j = i + open;
      while (j < body.length) {
        if (body[j] === "\\") { j += 2; continue; }
        if (body[j] === "$" && (!display || body[j + 1] === "$")) break;
        if (!display && body[j] === "\n") break;
        j++;
      }
      if (j >= body.length || (!display && body[j] !== "$")) {
        found.push({ line, tex: body.slice(i, Math.min(j, i + 60)), display, unclosed: true });
        i = j; continue;
      }
      const tex = body.slice(i + open, j);
      found.push({ line, tex, display });
      line += (tex.match(/\n/g) || []).length;
      i = j + open; continue;
    }
    i++;
  }
  return found;
}

function main() {
  const katex = loadKatex();
  let failures = 0, total = 0;
  for (const file of process.argv.slice(2)) {
    const text = fs.readFileSync(file, "utf8");
    for (const f of formulas(text)) {
      total++;
      if (f.unclosed) {
        failures++;
        console.log(`${file}:${f.line}: unclosed math: ${f.tex}`);
        continue;
      }
      try {
        katex.renderToString(f.tex, { displayMode: f.display, strict: "error", throwOnError: true });
      } catch (e) {
        failures++;
        console.log(`${file}:${f.line}: ${e.message.split("\n")[0]}\n    ${f.tex.trim().slice(0, 200)}`);
      }
    }
  }
  console.log(`${total} formulas checked, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main();
