// Semantic check of KQL queries with Microsoft's own Kusto language service (Kusto.Language, as
// the npm package @kusto/language-service-next ships it): each query is parsed and bound against
// a database holding the documented tables, so a syntax error, an unknown table, column or
// function, or a type error is reported as the portal would report it.
// Usage: node kql_check.js <node_modules dir> <tables.json> <queries.json>
//   tables.json: {"Table": {"Column": "type", ...}, ...}; queries.json: {"name": "query", ...}
// Prints {"name": ["Error: message @offset", ...], ...} (an empty list: no diagnostic).
'use strict';
const path = require('path');
const fs = require('fs');

const [modules, tablesFile, queriesFile] = process.argv.slice(2);
const pkg = path.join(modules, '@kusto', 'language-service-next');
require(path.join(pkg, 'bridge.js'));
require(path.join(pkg, 'Kusto.Language.Bridge.js'));
const K = globalThis.Kusto.Language;

const tables = JSON.parse(fs.readFileSync(tablesFile, 'utf8'));
const symbols = Object.entries(tables)
  .filter(([name]) => !name.startsWith('_'))
  .map(([name, columns]) => {
    const schema = '(' + Object.entries(columns).map(([c, t]) => `${c}:${t}`).join(', ') + ')';
    return new K.Symbols.TableSymbol.$ctor7(name, schema, null);
  });
const database = new K.Symbols.DatabaseSymbol.$ctor1('workspace', symbols, false);
const globals = K.GlobalState.Default.WithDatabase(database);

const out = {};
for (const [name, query] of Object.entries(JSON.parse(fs.readFileSync(queriesFile, 'utf8')))) {
  const diagnostics = K.KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics();
  out[name] = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    out[name].push(`${d.Severity}: ${d.Message} @${d.Start}`);
  }
}
process.stdout.write(JSON.stringify(out));
