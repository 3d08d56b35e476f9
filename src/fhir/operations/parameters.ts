import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { isObject } from '../../validation/instances.js';
import { badRequest } from '../outcome.js';

/**
 * An operation's Parameters body: undefined when there is none, 400 when it is something else or its
 * `parameter` is not a list of parameters (a string or a null entry would otherwise fail deep inside).
 */
export function parametersBody(body: unknown): Parameters | undefined {
  if (body === undefined || (isObject(body) && Object.keys(body).length === 0)) return undefined;
  if (!isObject(body) || body.resourceType !== 'Parameters')
    throw badRequest('The body of an operation is a Parameters resource / 操作の本文は Parameters リソースです');
  const list = body.parameter;
  if (list !== undefined && !(Array.isArray(list) && list.every(isObject)))
    throw badRequest('Parameters.parameter is a list of parameters / Parameters.parameter はパラメータの配列です', ['Parameters.parameter']);
  return body as unknown as Parameters;
}

/** The named parameter of a Parameters body (the first, when named twice). */
export function parameterNamed(body: unknown, name: string): ParametersParameter | undefined {
  return parametersBody(body)?.parameter?.find((p) => p.name === name);
}
