#!/usr/bin/env node
// Parses Gala's published AsyncAPI document with the AsyncAPI project's own parser
// (@asyncapi/parser) and exits non-zero, printing every diagnostic, on any error.
// Usage: node validate.js <asyncapi.json> [--strict]   (--strict: warnings fail too)
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

async function main() {
  const args = process.argv.slice(2);
  const strict = args.includes("--strict");
  const file = args.find((a) => !a.startsWith("--"));
  if (!file) {
    console.error("usage: node validate.js <asyncapi.json> [--strict]");
    return 2;
  }
  const source = path.resolve(file);
  const text = fs.readFileSync(source, "utf8");
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source });
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join("/") : "(document)";
    const severity = SEVERITY[d.severity] || String(d.severity);
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    if (d.severity === DiagnosticSeverity.Warning) warnings += 1;
    console.error(`${severity} ${d.code}: ${d.message} at ${where}`);
  }
  if (!document || errors > 0 || (strict && warnings > 0)) {
    console.error(`${source}: INVALID (${errors} errors, ${warnings} warnings)`);
    return 1;
  }
  const channels = document.channels().length;
  const messages = document.allMessages().length;
  const operations = document.operations().length;
  console.log(
    `${source}: valid AsyncAPI ${document.version()} ` +
      `(${channels} channels, ${operations} operations, ${messages} messages, ${warnings} warnings)`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  },
);
