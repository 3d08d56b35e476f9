import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ErrorObject } from 'ajv';
import { projectRoot } from '../paths.js';

/** A validate function of ajv's standalone code. */
export interface StandaloneValidate {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/** Child elements of a type or backbone element: property → [type key, 1 when repeating]. */
export type ElementTable = Record<string, [string, 1?]>;

export interface InvariantDefinition {
  key: string;
  human: string;
  expression: string;
  /** The element path the expression is evaluated on, e.g. `Patient.contact` or `Period`. */
  base: string;
}

/** What scripts/build-schema-validator.mjs derives from the R4 StructureDefinitions. */
export interface FhirModel {
  resourceTypes: string[];
  /** Keyed by data type name (`HumanName`, `SimpleQuantity`) or backbone element path (`Patient.contact`). */
  elements: Record<string, ElementTable>;
  /** Base invariants with error severity, keyed like `elements`. */
  invariants: Record<string, InvariantDefinition[]>;
  /** Invariants not evaluated because fhirpath.js lacks a function they use (e.g. htmlChecks). */
  skippedInvariants: string[];
}

export interface GeneratedValidators {
  validators: Record<string, StandaloneValidate>;
  model: FhirModel;
  /** Whether V8 accepted the code cache made at build time (false: the code was parsed). */
  codeCacheUsed: boolean;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const generatedDir = path.join(here, 'generated');
const schemaFile = path.join(generatedDir, 'fhir-schema.cjs');
const modelFile = path.join(generatedDir, 'fhir-model.json');
const cacheFile = path.join(generatedDir, 'fhir-schema.cache');

/**
 * Generates the validators when they are missing (a checkout where `npm run build` has not run yet).
 * Normal installs generate them in `prepare`; this only keeps a fresh tree usable.
 */
async function generate(): Promise<void> {
  const script = path.join(projectRoot, 'scripts', 'build-schema-validator.mjs');
  const { buildSchemaValidator } = (await import(pathToFileURL(script).href)) as {
    buildSchemaValidator: (options: { outputDirs: string[] }) => unknown;
  };
  buildSchemaValidator({ outputDirs: [path.relative(projectRoot, generatedDir)] });
}

if (!existsSync(schemaFile) || !existsSync(modelFile)) await generate();

/** Must equal the wrapper scripts/build-schema-validator.mjs made the code cache with. */
const WRAPPER_START = '(function (exports, require, module, __filename, __dirname) {';
const WRAPPER_END = '\n})';

/**
 * Loads the generated CommonJS code like `require` would, but through V8's code cache when the build
 * left one for this Node version: that cuts start-up from ~250 ms to ~40 ms.
 */
function loadValidators(): { validators: Record<string, StandaloneValidate>; cacheUsed: boolean } {
  const code = readFileSync(schemaFile, 'utf8');
  const cachedData = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new vm.Script(WRAPPER_START + code + WRAPPER_END, { filename: schemaFile, cachedData });
  const module = { exports: {} as Record<string, StandaloneValidate> };
  const factory = script.runInThisContext() as (...args: unknown[]) => void;
  factory(module.exports, createRequire(schemaFile), module, schemaFile, generatedDir);
  return { validators: module.exports, cacheUsed: cachedData !== undefined && !script.cachedDataRejected };
}

const loaded = loadValidators();

/** The generated structure validators and element model, loaded once per process. */
export const generated: GeneratedValidators = {
  validators: loaded.validators,
  model: JSON.parse(readFileSync(modelFile, 'utf8')) as FhirModel,
  codeCacheUsed: loaded.cacheUsed,
};
