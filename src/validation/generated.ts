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
  /** The complete validators: every error of a resource (ajv's allErrors), for the OperationOutcome. */
  validators: Record<string, StandaloneValidate>;
  /**
   * The quick validators: the same schema, accepting exactly the same resources, but they stop at the
   * first error and report nothing useful about it. A resource they refuse is validated again by the
   * complete validator of its type to say why.
   */
  quickValidators: Record<string, StandaloneValidate>;
  model: FhirModel;
  /** Whether V8 accepted the code caches made at build time (false: some code was parsed). */
  codeCacheUsed: boolean;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const generatedDir = path.join(here, 'generated');
const modelFile = path.join(generatedDir, 'fhir-model.json');
/** The code of the complete and of the quick validators (see scripts/build-schema-validator.mjs). */
const COMPLETE = 'fhir-schema';
const QUICK = 'fhir-schema-quick';
const codeFile = (name: string) => path.join(generatedDir, `${name}.cjs`);

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

if (![codeFile(COMPLETE), codeFile(QUICK), modelFile].every((f) => existsSync(f))) await generate();

/** Must equal the wrapper scripts/build-schema-validator.mjs made the code cache with. */
const WRAPPER_START = '(function (exports, require, module, __filename, __dirname) {';
const WRAPPER_END = '\n})';

/**
 * Loads the generated CommonJS code like `require` would, but through V8's code cache when the build
 * left one for this Node version: that cuts start-up from ~250 ms to ~40 ms.
 */
function loadValidators(name: string): { validators: Record<string, StandaloneValidate>; cacheUsed: boolean } {
  const schemaFile = codeFile(name);
  const cacheFile = path.join(generatedDir, `${name}.cache`);
  const code = readFileSync(schemaFile, 'utf8');
  const cachedData = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new vm.Script(WRAPPER_START + code + WRAPPER_END, { filename: schemaFile, cachedData });
  const module = { exports: {} as Record<string, StandaloneValidate> };
  const factory = script.runInThisContext() as (...args: unknown[]) => void;
  factory(module.exports, createRequire(schemaFile), module, schemaFile, generatedDir);
  return { validators: module.exports, cacheUsed: cachedData !== undefined && !script.cachedDataRejected };
}

const complete = loadValidators(COMPLETE);
const quick = loadValidators(QUICK);

/** The generated structure validators and element model, loaded once per process. */
export const generated: GeneratedValidators = {
  validators: complete.validators,
  quickValidators: quick.validators,
  model: JSON.parse(readFileSync(modelFile, 'utf8')) as FhirModel,
  codeCacheUsed: complete.cacheUsed && quick.cacheUsed,
};
