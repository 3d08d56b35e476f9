import type { Resource } from '@medplum/fhirtypes';
import { validateInStages, validateResource, type ValidationIssue } from '../validation/index.js';
import { isSupportedType } from '../store/resource-types.js';
import { FhirError, type Issue } from './outcome.js';

/**
 * Checks a resource body before it is written: a JSON object of a supported type (matching the URL's type
 * where there is one), then structure and claimed profiles. Structure failures answer 400, profile and
 * invariant failures 422, as FHIR's create/update interactions specify.
 */
export function assertValidResource(body: unknown, expectedType?: string): Resource {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new FhirError(400, { code: 'structure', diagnostics: 'The body must be a FHIR resource (JSON object) / FHIRリソースを送信してください' });
  const resourceType = (body as { resourceType?: unknown }).resourceType;
  if (typeof resourceType !== 'string')
    throw new FhirError(400, { code: 'structure', diagnostics: 'resourceType is missing', expression: ['resourceType'] });
  if (expectedType && resourceType !== expectedType)
    throw new FhirError(400, {
      code: 'invalid',
      diagnostics: `resourceType ${resourceType} does not match the URL's ${expectedType}`,
      expression: ['resourceType'],
    });
  if (!isSupportedType(resourceType))
    throw new FhirError(400, { code: 'not-supported', diagnostics: `Resource type ${resourceType} is not held by this gateway` });
  const { structure, rules } = validateInStages(body);
  const structural = structure.filter(isError);
  if (structural.length) throw new FhirError(400, structural.map(toIssue));
  const broken = rules.filter(isError);
  if (broken.length) throw new FhirError(422, broken.map(toIssue));
  return body as Resource;
}

/** Every issue (errors, warnings, information), for $validate. */
export function validationIssues(body: unknown, profile?: string): Issue[] {
  return validateResource(body, profile ? { profiles: [profile] } : undefined).map(toIssue);
}

const isError = (issue: ValidationIssue) => issue.severity === 'error' || issue.severity === 'fatal';

function toIssue(issue: ValidationIssue): Issue {
  return {
    severity: issue.severity,
    code: issue.code as Issue['code'],
    diagnostics: issue.diagnostics,
    expression: issue.expression,
  };
}
