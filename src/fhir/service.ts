import { newId } from '../store/ids.js';
import type { Resource } from '@medplum/fhirtypes';
import { auditRow } from '../audit/events.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { Database, Queryable } from '../store/db.js';
import { canSee, canWrite } from '../store/access.js';
import type { Repository } from '../store/repository.js';
import { executeSearch } from '../store/search/execute.js';
import { parseSearch, type QueryParams, type SearchRequest } from '../store/search/request.js';
import type { StoredResource } from '../store/stored.js';
import type { AuditRow, PreparedWrite } from '../store/write-batch.js';
import type { Caller } from './caller.js';
import { badRequest, FhirError, forbidden, gone, notFound, preconditionFailed } from './outcome.js';
import { prepareDeletion, prepareVersion } from './prepare.js';
import { resourceResult, storedResult, type FhirResult } from './results.js';
import { assertValidResource } from './validate.js';
import { assertConsentRules } from '../consent/rules.js';
import { breakGlassNotices } from '../consent/break-glass.js';
import { disclosureBases, foreignRows } from '../consent/basis.js';
import { disclosureRows } from '../audit/disclosure.js';
import type { HistoryQuery } from '../store/repository.js';
import { log } from '../logger.js';
import { assertAgreementRules } from '../consent/agreements.js';
import { checkSubscription } from '../subscriptions/validate-subscription.js';

/** A write decided but not yet committed: a transaction collects these and commits them together. */
export interface PlannedWrite {
  write?: PreparedWrite;
  result: FhirResult;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function assertId(id: string): void {
  if (!FHIR_ID.test(id)) throw badRequest(`"${id}" is not a valid resource id / IDの形式が正しくありません`);
}

/** The FHIR interactions on the store, independent of HTTP: the REST router and Bundles both call these. */
export class FhirService {
  constructor(
    private readonly db: Database,
    private readonly repo: Repository,
    private readonly audit: AuditRecorder,
  ) {}

  async read(caller: Caller, type: string, id: string, q: Queryable = this.db): Promise<FhirResult> {
    assertId(id);
    const stored = await this.repo.read(type, id, caller, q);
    await Promise.all([this.recordAccess(caller, 'read', `${type}/${id}`, stored, q), this.noticeBreakGlass(caller, stored ? [stored] : [], q)]);
    if (!stored) throw notFound(`${type}/${id} is not known / 見つかりません`);
    if (stored.deleted) throw gone(`${type}/${id} was deleted / 削除されています`);
    return storedResult(200, stored);
  }

  async vread(caller: Caller, type: string, id: string, version: string, q: Queryable = this.db): Promise<FhirResult> {
    assertId(id);
    if (!/^\d{1,9}$/.test(version)) throw notFound(`Version ${version} of ${type}/${id} is not known`);
    const stored = await this.repo.readVersion(type, id, Number(version), caller, q);
    await this.recordAccess(caller, 'vread', `${type}/${id}/_history/${version}`, stored, q);
    if (!stored) throw notFound(`Version ${version} of ${type}/${id} is not known / 見つかりません`);
    if (stored.deleted) throw gone(`Version ${version} of ${type}/${id} is a deletion`);
    return storedResult(200, stored);
  }

  async search(caller: Caller, type: string, params: QueryParams, lenient = false, q: Queryable = this.db) {
    const request = parseSearch(type, params, lenient);
    const result = await executeSearch(q, request, caller);
    const shown = [...result.matches, ...result.included];
    await Promise.all([
      this.recordWithDisclosures(caller, [auditRow({
        interaction: 'search',
        actor: caller,
        query: new URLSearchParams(params).toString(),
        entities: result.matches.map((m) => `${m.resourceType}/${m.id}`).slice(0, 100),
        patientId: singlePatient(result.matches),
      })], shown, q),
      this.noticeBreakGlass(caller, shown, q),
    ]);
    return { request, result };
  }

  /** History (system, type or instance), filtered like every read; audited with its disclosures. */
  async history(caller: Caller, query: HistoryQuery): Promise<{ rows: StoredResource[]; total: number }> {
    const page = await this.repo.history(query, caller);
    const shown = page.rows.filter((r) => !r.deleted);
    await Promise.all([
      this.recordWithDisclosures(caller, [auditRow({
        interaction: 'history',
        actor: caller,
        entities: [query.resourceType && query.id ? `${query.resourceType}/${query.id}` : query.resourceType ?? '*'],
        patientId: singlePatient(page.rows),
      })], shown),
      this.noticeBreakGlass(caller, shown),
    ]);
    return page;
  }

  /** Patient/{id}/$everything: the compartments of the patient and its linked records, as far as the caller may see. */
  async everything(caller: Caller, patientId: string, count: number, offset: number): Promise<{ rows: StoredResource[]; total: number }> {
    await this.read(caller, 'Patient', patientId);
    const page = await this.repo.compartment(patientId, caller, count, offset);
    await Promise.all([
      this.recordWithDisclosures(caller, [auditRow({
        interaction: 'operation', operation: '$everything', actor: caller, patientId,
        entities: page.rows.map((r) => `${r.resourceType}/${r.id}`).slice(0, 100),
      })], page.rows),
      this.noticeBreakGlass(caller, page.rows),
    ]);
    return page;
  }

  /** Emergency access is always reported to the owners of what was disclosed. */
  private async noticeBreakGlass(caller: Caller, disclosed: StoredResource[], q: Queryable = this.db): Promise<void> {
    const notices = breakGlassNotices(caller, disclosed);
    if (!notices.length) return;
    await this.repo.commit(notices, q);
    log.info({ organization: caller.organizationId, notices: notices.length }, 'break-glass access reported to the data owners');
  }

  /**
   * The access's AuditEvents and, for other owners' data shown to the caller, one disclosure AuditEvent per
   * owner and patient with what permitted it, stored in the same group commit.
   */
  private async recordWithDisclosures(caller: Caller, rows: AuditRow[], shown: StoredResource[], q: Queryable = this.db): Promise<void> {
    await this.record([...rows, ...(await this.disclosureAudit(caller, shown, q))], q);
  }

  private async disclosureAudit(caller: Caller, shown: StoredResource[], q: Queryable): Promise<AuditRow[]> {
    const foreign = foreignRows(caller, shown);
    if (!foreign.length) return [];
    const unknown = foreign.filter((r) => r.disclosureBasis === undefined);
    const bases = unknown.length ? await disclosureBases(q, caller, unknown) : new Map<string, string>();
    return disclosureRows(caller, foreign.map((r) => ({
      resourceType: r.resourceType, id: r.id, owner: r.owner!, patientId: r.patientId!,
      basis: r.disclosureBasis ?? bases.get(`${r.resourceType}/${r.id}`),
    })));
  }

  /**
   * AuditEvents of reads: group-committed on their own; inside a transaction (Bundle), written with it,
   * as the transaction holds the store until it ends.
   */
  private async record(rows: AuditRow[], q: Queryable = this.db): Promise<void> {
    if (q === this.db) await this.audit.record(...rows);
    else await this.repo.appendAudit(rows, q);
  }

  /** Searches a conditional interaction's criteria among what the caller may see. */
  async matchesFor(caller: Caller, type: string, query: string, q: Queryable): Promise<StoredResource[]> {
    const params = [...new URLSearchParams(query)] as QueryParams;
    if (!params.length) throw badRequest('A conditional interaction needs search criteria / 条件が指定されていません');
    const request: SearchRequest = { ...parseSearch(type, params), count: 2, offset: 0, total: 'none', include: [], revinclude: [] };
    return (await executeSearch(q, request, caller)).matches;
  }

  async create(caller: Caller, body: unknown, type: string, ifNoneExist?: string): Promise<FhirResult> {
    const resource = assertValidResource(body, type);
    await this.checkRules(caller, resource);
    if (!ifNoneExist) return this.commitPlanned(this.planCreate(caller, resource));
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${type}?${ifNoneExist}`]);
      const matches = await this.matchesFor(caller, type, ifNoneExist, tx);
      if (matches.length > 1) throw preconditionFailed(`If-None-Exist matched ${matches.length} resources / 複数一致しました`);
      if (matches.length === 1) return storedResult(200, matches[0], true);
      return this.commitPlanned(this.planCreate(caller, resource), tx);
    });
  }

  planCreate(caller: Caller, resource: Resource, id: string = newId()): PlannedWrite {
    const { write, resource: stored } = prepareVersion(resource, {
      id, versionId: 1, owner: caller.organizationId ?? null, caller, method: 'POST', replacesIndex: false,
    });
    return { write, result: resourceResult(201, stored, true) };
  }

  async update(caller: Caller, type: string, id: string, body: unknown, ifMatch?: number): Promise<FhirResult> {
    assertId(id);
    const resource = assertValidResource(body, type);
    if (resource.id !== id) throw badRequest(`The body's id (${resource.id ?? 'none'}) must equal the URL's id ${id}`, ['id']);
    return this.db.transaction(async (tx) => this.commitPlanned(await this.planUpdate(caller, resource, ifMatch, tx), tx));
  }

  /**
   * Update (or create at a client-chosen id), with the current row locked until commit. A caller that has
   * locked the row already in `tx` passes what it read (null: no row) so it is not read twice.
   */
  async planUpdate(caller: Caller, resource: Resource, ifMatch: number | undefined, tx: Queryable, locked?: StoredResource | null): Promise<PlannedWrite> {
    const type = resource.resourceType;
    const id = resource.id!;
    const current = locked === undefined ? await this.repo.lockCurrent(tx, type, id) : (locked ?? undefined);
    if (current && !canWrite(caller, current)) throw this.refuseWrite(caller, current);
    if (ifMatch !== undefined && (!current || current.deleted || current.versionId !== ifMatch))
      throw preconditionFailed(`If-Match: version ${ifMatch} is not the current version of ${type}/${id} / 版が一致しません`);
    await this.checkRules(caller, resource, tx);
    const versionId = (current?.versionId ?? 0) + 1;
    const owner = current?.owner ?? caller.organizationId ?? null;
    const { write, resource: stored } = prepareVersion(resource, {
      id, versionId, owner, caller, method: 'PUT', replacesIndex: !!current,
    });
    return { write, result: resourceResult(current && !current.deleted ? 200 : 201, stored, true) };
  }

  async conditionalUpdate(caller: Caller, type: string, query: string, body: unknown, ifMatch?: number): Promise<FhirResult> {
    const resource = assertValidResource(body, type);
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${type}?${query}`]);
      const matches = await this.matchesFor(caller, type, query, tx);
      if (matches.length > 1) throw preconditionFailed(`The criteria matched ${matches.length} resources / 複数一致しました`);
      const id = matches[0]?.id ?? resource.id ?? newId();
      if (matches[0] && resource.id && resource.id !== matches[0].id)
        throw badRequest(`The body's id ${resource.id} differs from the matching resource ${matches[0].id}`, ['id']);
      assertId(id);
      return this.commitPlanned(await this.planUpdate(caller, { ...resource, id }, ifMatch, tx), tx);
    });
  }

  async delete(caller: Caller, type: string, id: string): Promise<FhirResult> {
    assertId(id);
    return this.db.transaction(async (tx) => this.commitPlanned(await this.planDelete(caller, type, id, tx), tx));
  }

  async planDelete(caller: Caller, type: string, id: string, tx: Queryable): Promise<PlannedWrite> {
    const current = await this.repo.lockCurrent(tx, type, id);
    // What the caller may not see answers exactly like what does not exist.
    if (!current || !(canSee(caller, current) || (await this.repo.read(type, id, caller, tx)))) throw notFound(`${type}/${id} is not known / 見つかりません`);
    if (!canWrite(caller, current)) throw this.refuseWrite(caller, current);
    if (current.deleted) return { result: { status: 204 } };
    const write = prepareDeletion({
      resourceType: type, id, versionId: current.versionId + 1, owner: current.owner, patientId: current.patientId, caller,
    });
    return { write, result: { status: 204, versionId: write.versionId } };
  }

  async conditionalDelete(caller: Caller, type: string, query: string): Promise<FhirResult> {
    return this.db.transaction(async (tx) => {
      const matches = await this.matchesFor(caller, type, query, tx);
      if (matches.length > 1) throw preconditionFailed(`The criteria matched ${matches.length} resources; delete them one by one`);
      if (!matches.length) return { status: 204 };
      return this.commitPlanned(await this.planDelete(caller, type, matches[0].id, tx), tx);
    });
  }

  /** Business rules beyond validation, for the types that have them. */
  async checkRules(caller: Caller, resource: Resource, q: Queryable = this.db): Promise<void> {
    if (resource.resourceType === 'Consent') await assertConsentRules(q, caller.organizationId, resource);
    if (resource.resourceType === 'OrganizationAffiliation') await assertAgreementRules(q, resource);
    if (resource.resourceType === 'Subscription') await checkSubscription(caller, resource, this.db, q);
  }

  async commitPlanned(planned: PlannedWrite, q: Queryable = this.db): Promise<FhirResult> {
    if (planned.write) await this.repo.commit([planned.write], q);
    return planned.result;
  }

  async commitWrites(writes: PreparedWrite[], q: Queryable): Promise<void> {
    await this.repo.commit(writes, q);
  }

  private refuseWrite(caller: Caller, current: StoredResource): FhirError {
    if (!canSee(caller, current)) return forbidden('This id cannot be written by your organization / このIDには書き込めません');
    return forbidden(
      `${current.resourceType}/${current.id} belongs to another organization; only its owner may change it / 他の機関のデータは変更できません`,
    );
  }

  private async recordAccess(caller: Caller, interaction: 'read' | 'vread', reference: string, stored?: StoredResource, q: Queryable = this.db) {
    const basis = stored ? (await disclosureBases(q, caller, [stored])).get(`${stored.resourceType}/${stored.id}`) : undefined;
    await this.record([
      auditRow({
        interaction,
        actor: caller,
        outcome: stored ? '0' : '4',
        entities: [reference],
        patientId: stored?.patientId,
        owner: stored?.owner,
        basis,
      }),
    ], q);
  }
}

function singlePatient(rows: StoredResource[]): string | null {
  const ids = new Set(rows.map((m) => m.patientId));
  return ids.size === 1 ? [...ids][0] : null;
}
