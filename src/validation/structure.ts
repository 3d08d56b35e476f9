import type { ErrorObject } from 'ajv';
import { generated } from './generated.js';
import { childPath, error, show, type ValidationIssue } from './issues.js';

const { validators, quickValidators, model } = generated;

export const isResourceType = (type: string): boolean => Object.hasOwn(validators, type);

/**
 * Checks a resource against the FHIR R4 JSON schema (corrected, see scripts/build-schema-validator.mjs).
 * The quick validator decides; only a resource it refuses goes through the complete one, whose errors
 * make the issues.
 */
export function validateStructure(resource: unknown): ValidationIssue[] {
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    return [error('structure', 'A resource must be a JSON object / リソースはJSONオブジェクトである必要があります')];
  }
  const type = (resource as { resourceType?: unknown }).resourceType;
  if (typeof type !== 'string') {
    return [error('required', "Missing 'resourceType' / resourceType がありません", 'resourceType')];
  }
  if (!isResourceType(type)) {
    return [error('not-supported', `Unknown resource type ${show(type)}: not a FHIR R4 resource / FHIR R4 のリソース型ではありません`, type)];
  }
  if (quickValidators[type](resource)) return [];
  const validate = validators[type];
  if (validate(resource)) return [];
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    const issue = toIssue(type, resource, e);
    if (!issue) continue;
    const key = `${issue.code}|${issue.expression?.[0]}|${issue.diagnostics}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push(issue);
    }
  }
  return issues;
}

interface Located {
  /** FHIRPath of the element, e.g. `Patient.name[0].given[1]`. */
  path: string;
  /** The element's FHIR type (data type name, primitive type, backbone path or resource type). */
  type: string | undefined;
  value: unknown;
}

/** Follows ajv's JSON pointer through the resource, naming each step the FHIRPath way. */
function locate(resourceType: string, resource: unknown, pointer: string): Located {
  let path = resourceType;
  let type: string | undefined = resourceType;
  let value: unknown = resource;
  let elementType: string | undefined;
  if (pointer === '') return { path, type, value };
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(value)) {
      path += `[${segment}]`;
      value = value[Number(segment)];
      type = elementType;
    } else {
      path = childPath(path, segment);
      const spec = type ? model.elements[type]?.[segment.startsWith('_') ? segment.slice(1) : segment] : undefined;
      elementType = segment.startsWith('_') ? 'Element' : spec?.[0];
      value = (value as Record<string, unknown> | undefined)?.[segment];
      type = Array.isArray(value) ? undefined : elementType;
    }
    if (type === 'Resource' && value && typeof value === 'object') {
      const nested = (value as { resourceType?: unknown }).resourceType;
      type = typeof nested === 'string' ? nested : undefined;
    }
  }
  return { path, type, value };
}

const JSON_KIND: Record<string, string> = {
  object: 'a JSON object / JSONオブジェクト',
  array: 'a JSON array / JSON配列',
  string: 'a JSON string / 文字列',
  number: 'a JSON number / 数値',
  integer: 'a JSON integer / 整数',
  boolean: 'true or false / 真偽値',
};

function toIssue(resourceType: string, resource: unknown, e: ErrorObject): ValidationIssue | undefined {
  const at = locate(resourceType, resource, e.instancePath);
  const params = e.params as Record<string, unknown>;
  const fhirType = at.type && /^[a-z]/.test(at.type) ? at.type : undefined;
  switch (e.keyword) {
    case 'if':
      return undefined; // the failing "else" branch reports the reason
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      return error('structure', `Unknown element '${name}' / 不明な要素 '${name}'`, childPath(at.path, name));
    }
    case 'fhirRequired':
    case 'required': {
      const name = String(params.missingProperty);
      const element = name.endsWith('[x]') ? name.slice(0, -3) : name;
      return error('required', `Missing required element '${name}' / 必須要素 '${name}' がありません`, childPath(at.path, element));
    }
    case 'type': {
      const expected = String(params.type);
      if (at.value === null) return error('structure', `null is not allowed here / ここに null は使用できません`, at.path);
      const wanted = fhirType ? `a FHIR ${fhirType} (${JSON_KIND[expected] ?? expected})` : (JSON_KIND[expected] ?? expected);
      const code = expected === 'object' || expected === 'array' ? 'structure' : 'value';
      return error(code, `Value ${show(at.value)} must be ${wanted}`, at.path);
    }
    case 'pattern':
    case 'minLength':
    case 'minimum':
    case 'maximum': {
      const what = fhirType ?? 'value';
      const detail = e.keyword === 'minLength' ? ' (empty strings are not allowed / 空文字列は使用できません)' : '';
      return error('value', `Invalid ${what} value ${show(at.value)}${detail} / ${what} として不正な値です`, at.path);
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).join(', ');
      return error('code-invalid', `Code ${show(at.value)} is not allowed here (allowed: ${allowed}) / 許可されていないコードです`, at.path);
    }
    case 'minItems':
      return error('structure', 'Arrays must not be empty / 空の配列は使用できません', at.path);
    case 'fhirChoice':
      return error('structure', `Only one type of '${String(params.choice)}' may be present / '${String(params.choice)}' は一つの型だけ指定できます`, at.path);
    case 'fhirNotEmpty':
    case 'fhirExtension':
      return error('invariant', e.message ?? String(params.key), at.path);
    case 'discriminator':
      if (params.error === 'tag') return error('required', "Missing 'resourceType' / resourceType がありません", childPath(at.path, 'resourceType'));
      return error('not-supported', `Unknown resource type ${show(params.tagValue)}: not a FHIR R4 resource / FHIR R4 のリソース型ではありません`, at.path);
    default:
      return error('structure', `${e.message ?? e.keyword}`, at.path);
  }
}
