import { createHash } from 'node:crypto';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { badRequest, operationOutcome, type Issue } from '../fhir/outcome.js';
import { log } from '../logger.js';
import type { MappedResource, MappingEngine, MappingIssue, MappingOutput } from '../mapping/engine.js';
import { mergeInto } from '../mapping/merge.js';
import { RowSource } from '../mapping/source.js';
import type { Services } from '../services.js';
import { onOffValue } from '../settings.js';
import type { Queryable } from '../store/db.js';
import { applyMapped, ApplyError, resolveLookups, rewriteReferences } from './apply.js';
import { TableError, type Table, type TableProblem } from './csv.js';
import { callerOf, type IngestSender } from './hl7-intake.js';
import {
  claimApplied, findApplied, markDuplicate, markRejected, recordReceived, recordResources, type MessageKind, type MessageStatus,
} from './message-store.js';
import { kyoryokuPartners } from './partners.js';
import { loadSenderFacts, senderVariables, type SenderFacts } from './sender.js';

/**
 * A CSV (or JSON) file of rows through a mapping file: every row mapped, the rows' parts of the same
 * resource merged (a care plan spans many rows), subjects looked up, then everything written in one
 * transaction with the file's status. Errors name line and column. By default a file with a bad row is
 * rejected whole; with partial acceptance the good rows are stored and each rejected row is reported.
 */

export interface PreparedTable {
  engine: MappingEngine;
  table: Table;
  messageType: string;
  /** The time the file describes (file name timestamp), for ordering; none when the file does not say. */
  messageTime?: Date;
  vars?: Record<string, string>;
  /** Adjusts the assembled resources against the store before they are written; returns more to write. */
  reconcile?: (tx: Queryable, owner: string, resources: MappedResource[], incomplete: ReadonlySet<string>) => Promise<MappedResource[]>;
  /** Warnings about what was stored, for the answer (not errors: nothing is refused). */
  review?: (tx: Queryable, stored: StoredRows, messageId: number) => Promise<Issue[]>;
}

/** What a file stored: its resources, and the lines each (`Type/id`) was made from. */
export interface StoredRows {
  resources: readonly MappedResource[];
  linesOf(key: string): number[];
}

/** The `partial` query parameter of an intake or a replay, read like an on/off setting; absent is off, anything unreadable 400. */
export function partialFlag(raw: unknown): boolean {
  if (raw === undefined || raw === '') return false;
  const value = typeof raw === 'string' ? onOffValue(raw) : undefined;
  if (value === undefined) throw badRequest(`partial must be true or false (also on/off, 1/0, yes/no), got "${String(raw)}" / partial の値が正しくありません`);
  return value;
}

export interface TableRequest {
  kind: MessageKind;
  transport: 'http';
  contentType?: string;
  fileName?: string;
  partial: boolean;
  existingId?: number;
}

export interface TableOutcome {
  httpStatus: number;
  outcome: OperationOutcome;
  status: MessageStatus;
  messageId?: number;
  written: string[];
}

const where = (p: { line?: number; column?: string }) =>
  p.line === undefined ? '' : `line ${p.line}${p.column ? `, column ${p.column}` : ''}: `;

function toIssues(problems: TableProblem[], severity: Issue['severity'] = 'error'): Issue[] {
  return problems.map((p) => ({
    severity, code: 'invalid', diagnostics: `${where(p)}${p.reason}`,
    ...(p.line !== undefined ? { expression: [`line ${p.line}${p.column ? `, column ${p.column}` : ''}`] } : {}),
  }));
}

const asProblem = (i: MappingIssue): TableProblem => ({ line: i.location.line, column: i.location.column, reason: i.reason });

interface Assembly {
  resources: MappedResource[];
  /** Lines that contributed to each resource (Type/id). */
  contributors: Map<string, Set<number>>;
  failures: Map<number, TableProblem[]>;
}

/** Merges the rows' resources; a row that contradicts an earlier one fails. */
export function assemble(rows: Map<number, MappingOutput>, failed: ReadonlyMap<number, TableProblem[]>): Assembly {
  const byKey = new Map<string, MappedResource>();
  const contributors = new Map<string, Set<number>>();
  const failures = new Map<number, TableProblem[]>();
  for (const [line, output] of [...rows].sort((a, b) => a[0] - b[0])) {
    if (failed.has(line)) continue;
    const staged = new Map<string, MappedResource>();
    let conflict: string | undefined;
    for (const r of output.resources) {
      const key = `${r.resourceType}/${r.id}`;
      const existing = staged.get(key) ?? byKey.get(key);
      if (!existing) {
        staged.set(key, { ...r, resource: structuredClone(r.resource), deletions: [...r.deletions], provenance: { ...r.provenance }, sources: { ...r.sources } });
        continue;
      }
      const copy = structuredClone(existing.resource);
      const path = mergeInto(copy, structuredClone(r.resource));
      if (path) {
        conflict = `${key}: ${path} differs from an earlier row of the same ${r.resourceType} / 同じ${r.resourceType}の他の行と値が異なります`;
        break;
      }
      staged.set(key, { ...existing, resource: copy, provenance: { ...r.provenance, ...existing.provenance } });
    }
    if (conflict) {
      failures.set(line, [{ line, reason: conflict }]);
      continue;
    }
    for (const [key, r] of staged) {
      byKey.set(key, r);
      if (!contributors.has(key)) contributors.set(key, new Set());
      contributors.get(key)!.add(line);
    }
  }
  return { resources: [...byKey.values()], contributors, failures };
}

function record(failed: Map<number, TableProblem[]>, line: number, problems: TableProblem[]): void {
  failed.set(line, [...(failed.get(line) ?? []), ...problems]);
}

export async function receiveTable(
  services: Services, bytes: Uint8Array, sender: IngestSender, request: TableRequest, prepare: (sender: SenderFacts) => PreparedTable,
): Promise<TableOutcome> {
  const controlId = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const id = request.existingId ?? await recordReceived(services.db, {
    kind: request.kind, transport: request.transport, senderOrg: sender.organizationId, senderClient: sender.clientId,
    controlId, raw: bytes, contentType: request.contentType, fileName: request.fileName,
  });
  try {
    const facts = await loadSenderFacts(services, sender.organizationId);
    const prepared = prepare(facts);
    const earlier = await findApplied(services.db, sender.organizationId, request.kind, controlId);
    if (earlier && earlier.id !== id) return await duplicate(services, id, earlier.id);
    const rows = await mapRows(services, prepared, facts);
    const failed = new Map<number, TableProblem[]>();
    for (const [line, output] of rows) if (output.issues.length) record(failed, line, output.issues.map(asProblem));

    const result = await services.db.transaction(async (tx) => {
      await claimApplied(tx, id, prepared.messageType, prepared.messageTime);
      const caller = callerOf(sender);
      const lookups = await resolveLookups(caller, [...rows.values()].flatMap((o) => o.lookups), tx);
      for (const [line, output] of rows) {
        const missing = lookups.failures.filter((f) => output.lookups.some((l) => l.reference === f.lookup.reference));
        if (missing.length) record(failed, line, missing.map((f) => ({ ...asProblem(f.issue), line })));
      }
      for (let attempt = 0; ; attempt++) {
        const assembly = assemble(rows, failed);
        for (const [line, problems] of assembly.failures) record(failed, line, problems);
        if (failed.size && (!request.partial || failed.size === rows.size)) throw new TableError(sortedProblems(failed), 422);
        rewriteReferences(assembly.resources, lookups.resolved);
        try {
          const more = prepared.reconcile ? await prepared.reconcile(tx, sender.organizationId, assembly.resources, touchedBy(rows, failed)) : [];
          const applied = await applyMapped(tx, {
            services, caller, auth: sender.auth, messageId: id, messageTime: prepared.messageTime,
          }, [...assembly.resources, ...more]);
          await recordResources(tx, id, applied.written);
          const linesOf = (key: string) => [...(assembly.contributors.get(key) ?? [])].sort((a, b) => a - b);
          const warnings = prepared.review ? await prepared.review(tx, { resources: assembly.resources, linesOf }, id) : [];
          return { applied, rejected: sortedProblems(failed), warnings };
        } catch (err) {
          if (!(err instanceof ApplyError) || !request.partial || attempt > rows.size) throw err;
          const blamed = blame(err, assembly);
          if (!blamed.size) throw err;
          for (const [line, problems] of blamed) record(failed, line, problems);
        }
      }
    });
    const { applied, rejected, warnings } = result;
    log.info({ messageId: id, kind: request.kind, organization: sender.organizationId, rows: rows.size, rejectedRows: new Set(rejected.map((r) => r.line)).size,
      written: applied.written.length }, 'file applied');
    const summary: Issue = {
      severity: 'information', code: 'informational',
      diagnostics: `Stored: ${applied.written.length} written, ${applied.unchanged.length} unchanged, ${applied.older.length} left as newer data (message ${id}); ${rows.size - new Set(rejected.map((r) => r.line)).size} of ${rows.size} rows accepted`,
    };
    return { httpStatus: 200, outcome: operationOutcome([summary, ...warnings, ...toIssues(rejected)]), status: 'mapped', messageId: id, written: applied.written };
  } catch (err) {
    if ((err as { code?: string })?.code === '23505') {
      const original = await findApplied(services.db, sender.organizationId, request.kind, controlId);
      return duplicate(services, id, original?.id);
    }
    return refuse(services, id, err);
  }
}

/** The resources (`Type/id`) the refused rows would have contributed to. */
function touchedBy(rows: Map<number, MappingOutput>, failed: Map<number, TableProblem[]>): Set<string> {
  return new Set([...failed.keys()].flatMap((line) => (rows.get(line)?.resources ?? []).map((r) => `${r.resourceType}/${r.id}`)));
}

/** The rows behind the resources an ApplyError names. */
function blame(err: ApplyError, assembly: Assembly): Map<number, TableProblem[]> {
  const blamed = new Map<number, TableProblem[]>();
  for (const issue of err.issues) {
    if (issue.location.line !== undefined) {
      record(blamed, issue.location.line, [asProblem(issue)]);
      continue;
    }
    const key = /^(\w+\/[A-Za-z0-9\-.]+)/.exec(issue.reason)?.[1];
    for (const line of (key && assembly.contributors.get(key)) || []) record(blamed, line, [{ line, reason: issue.reason }]);
  }
  return blamed;
}

function sortedProblems(failed: Map<number, TableProblem[]>): TableProblem[] {
  return [...failed].sort((a, b) => a[0] - b[0]).flatMap(([, problems]) => problems);
}

async function mapRows(services: Services, prepared: PreparedTable, facts: SenderFacts): Promise<Map<number, MappingOutput>> {
  const partners = prepared.engine.spec.needs?.includes('partners') ? await kyoryokuPartners(services.db, facts.organizationId) : undefined;
  return mapTableRows(prepared, facts, partners);
}

/** Each row through the mapping (no store): its resources, lookups and issues, by line. */
export function mapTableRows(prepared: PreparedTable, facts: SenderFacts, partners?: readonly Record<string, unknown>[]): Map<number, MappingOutput> {
  const vars = { ...senderVariables(facts), ...prepared.vars };
  const rows = new Map<number, MappingOutput>();
  for (const row of prepared.table.rows) rows.set(row.line, prepared.engine.run(new RowSource(row.values, row.line), { vars, partners }));
  return rows;
}

async function duplicate(services: Services, id: number, originalId: number | undefined): Promise<TableOutcome> {
  await markDuplicate(services.db, id, originalId);
  log.info({ messageId: id, duplicateOf: originalId }, 'file is a duplicate; nothing changed');
  const outcome = operationOutcome([{ severity: 'information', code: 'duplicate',
    diagnostics: `The same file was applied before (message ${originalId ?? '?'}): nothing changed / 同じファイルは適用済みです` }]);
  return { httpStatus: 200, outcome, status: 'duplicate', messageId: id, written: [] };
}

async function refuse(services: Services, id: number, err: unknown): Promise<TableOutcome> {
  let problems: TableProblem[];
  let status: number;
  if (err instanceof TableError) {
    problems = err.problems;
    status = err.status;
  } else if (err instanceof ApplyError) {
    problems = err.issues.map(asProblem);
    status = err.status;
  } else {
    log.error({ err, messageId: id }, 'file could not be processed');
    problems = [{ reason: 'Internal error; send the file again later / 内部エラー' }];
    status = 500;
  }
  try {
    await markRejected(services.db, id, problems);
  } catch (storeErr) {
    log.error({ err: storeErr }, 'a refused file could not be marked');
  }
  log.info({ messageId: id, problems: problems.length, status }, 'file refused');
  return { httpStatus: status, outcome: operationOutcome(toIssues(problems)), status: 'rejected', messageId: id, written: [] };
}
