/** A row of `resource` or `resource_version`, with the resource kept as the JSON text the store holds. */
export interface StoredResource {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  owner: string | null;
  patientId: string | null;
  method?: string;
  json: string | null;
  /** For another owner's row read by a search: what let the viewer see it (see disclosureBasisSql). */
  disclosureBasis?: string | null;
}

export const STORED_COLUMNS =
  'resource_type, id, version_id, last_updated, deleted, owner, patient_id, content::text AS json';

export interface StoredRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: Date;
  deleted: boolean;
  owner: string | null;
  patient_id: string | null;
  method?: string;
  json: string | null;
  basis?: string | null;
}

export function toStored(row: StoredRow): StoredResource {
  return {
    resourceType: row.resource_type,
    id: row.id,
    versionId: row.version_id,
    lastUpdated: row.last_updated,
    deleted: row.deleted,
    owner: row.owner,
    patientId: row.patient_id,
    method: row.method,
    json: row.json,
    ...(row.basis !== undefined && { disclosureBasis: row.basis }),
  };
}
