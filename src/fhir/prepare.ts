import type { Consent, Resource } from '@medplum/fhirtypes';
import { grantsOf } from '../consent/grants.js';
import { auditRow, type Interaction } from '../audit/events.js';
import { patientOf } from '../store/resource-types.js';
import { emptyIndexRows, extractIndexRows } from '../store/search/extract.js';
import type { PreparedWrite } from '../store/write-batch.js';
import type { Caller } from './caller.js';
import { stampOwner } from './ownership.js';

export interface VersionFacts {
  id: string;
  versionId: number;
  owner: string | null;
  caller: Caller;
  method: 'POST' | 'PUT';
  /** True when an earlier version exists (its index rows are replaced). */
  replacesIndex: boolean;
  now?: Date;
}

/** Turns a validated resource into the version row, index rows and audit entry that commit together. */
export function prepareVersion(input: Resource, facts: VersionFacts): { write: PreparedWrite; resource: Resource } {
  const now = facts.now ?? new Date();
  const resource = {
    ...input,
    id: facts.id,
    meta: stampOwner({ ...input.meta, versionId: String(facts.versionId), lastUpdated: now.toISOString() }, facts.owner),
  } as Resource;
  const record = resource as Resource & Record<string, unknown>;
  const patientId = patientOf(record) ?? null;
  const interaction: Interaction = facts.versionId === 1 ? 'create' : 'update';
  const write: PreparedWrite = {
    resourceType: resource.resourceType,
    id: facts.id,
    versionId: facts.versionId,
    lastUpdated: now,
    deleted: false,
    owner: facts.owner,
    patientId,
    method: facts.method,
    json: JSON.stringify(resource),
    index: extractIndexRows(record),
    replacesIndex: facts.replacesIndex,
    audit: auditRow({
      interaction,
      actor: facts.caller,
      entities: [`${resource.resourceType}/${facts.id}/_history/${facts.versionId}`],
      patientId,
      owner: facts.owner,
      recorded: now,
    }),
    notify: true,
    ...(resource.resourceType === 'Consent' && facts.owner
      ? { grants: grantsOf(resource as Consent, facts.id, facts.owner) }
      : {}),
  };
  return { write, resource };
}

export interface DeletedFacts {
  resourceType: string;
  id: string;
  versionId: number;
  owner: string | null;
  patientId: string | null;
  caller: Caller;
}

/** A deletion is a new version with no content; its index rows go. */
export function prepareDeletion(facts: DeletedFacts): PreparedWrite {
  const now = new Date();
  return {
    resourceType: facts.resourceType,
    id: facts.id,
    versionId: facts.versionId,
    lastUpdated: now,
    deleted: true,
    owner: facts.owner,
    patientId: facts.patientId,
    method: 'DELETE',
    json: null,
    index: emptyIndexRows(),
    replacesIndex: true,
    audit: auditRow({
      interaction: 'delete',
      actor: facts.caller,
      entities: [`${facts.resourceType}/${facts.id}/_history/${facts.versionId}`],
      patientId: facts.patientId,
      owner: facts.owner,
      recorded: now,
    }),
    notify: true,
  };
}
