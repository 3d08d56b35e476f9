import type { Coding, Consent, ConsentProvision } from '@medplum/fhirtypes';
import { parseDateRange } from '../store/search/dates.js';

/**
 * One row of consent_grant (column names as stored): what one provision of an active Consent permits
 * or denies, to whom, for which data. Written with the Consent in the same statement.
 */
export interface ConsentGrant {
  consent_id: string;
  owner: string;
  patient_id: string;
  grantee: string;
  resource_type: string;
  purpose: string;
  permit: boolean;
  depth: number;
  period_start: string | null;
  period_end: string | null;
  data_start: string | null;
  data_end: string | null;
  /** Codes the data must all carry (`system|code`, empty system = any); null = any data. */
  codes: string[] | null;
  /** Security labels the data must all carry; null = any data. */
  labels: string[] | null;
  conditional: boolean;
  provision: string;
}

export const ANY = '*';
export const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
export const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
/** Actor roles that receive data: (primary) information recipient. Other roles are not grantees. */
export const RECIPIENT_ROLES = ['IRCP', 'PRCP'];
const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
/** Provision actions that concern looking at data; a provision stating only others (collect, correct) shares nothing. */
const DISCLOSURE_ACTIONS = ['access', 'use', 'disclose'];
/** A Consent flattening into more rows than this is refused as too complex to enforce. */
export const MAX_GRANTS = 10_000;

/** What a provision applies to, after narrowing by its ancestors. */
interface Scope {
  grantees: string[];
  types: string[];
  purposes: string[];
  start: Date | null;
  end: Date | null;
  dataStart: Date | null;
  dataEnd: Date | null;
  /** Alternatives: the data matches when it carries every code of one of them ([[]] = no restriction). */
  codes: string[][];
  labels: string[][];
}

const UNRESTRICTED: Scope = {
  grantees: [ANY], types: [ANY], purposes: [ANY], start: null, end: null, dataStart: null, dataEnd: null, codes: [[]], labels: [[]],
};

/**
 * Flattens a Consent into grant rows. Only an active Consent about a Patient grants anything, and it
 * only ever concerns its recorder's (`owner`'s) data: a Consent can never open another owner's data.
 * A nested provision is an exception inside its parent: it applies only where the parent applies, so
 * what it leaves unstated it inherits and what it states narrows the parent's scope.
 */
export function grantsOf(consent: Consent, consentId: string, owner: string): ConsentGrant[] {
  const patientId = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(consent.patient?.reference ?? '')?.[1];
  if (consent.status !== 'active' || !patientId || !consent.provision) return [];
  const grants: ConsentGrant[] = [];
  const visit = (provision: ConsentProvision, parent: Scope, depth: number, path: string) => {
    const permit = (provision.type ?? 'permit') === 'permit';
    const scope = narrow(parent, provision, permit);
    if (!scope) return; // applies to nothing, so neither do its exceptions
    const conditional = Boolean(scope.dataStart || scope.dataEnd) || scope.codes.some((c) => c.length > 0) || scope.labels.some((l) => l.length > 0);
    for (const grantee of scope.grantees) {
      for (const resourceType of scope.types) {
        for (const purpose of scope.purposes) {
          for (const codes of scope.codes) {
            for (const labels of scope.labels) {
              grants.push({
                consent_id: consentId, owner, patient_id: patientId, grantee, resource_type: resourceType, purpose, permit, depth,
                period_start: iso(scope.start), period_end: iso(scope.end), data_start: iso(scope.dataStart), data_end: iso(scope.dataEnd),
                codes: codes.length ? codes : null, labels: labels.length ? labels : null, conditional, provision: path,
              });
            }
          }
        }
      }
      if (grants.length > MAX_GRANTS) return;
    }
    provision.provision?.forEach((child, i) => visit(child, scope, depth + 1, `${path}.provision[${i}]`));
  };
  visit(consent.provision, UNRESTRICTED, 0, 'Consent.provision');
  return grants;
}

function narrow(parent: Scope, provision: ConsentProvision, permit: boolean): Scope | undefined {
  if (provision.action?.length && !provision.action.some((a) => a.coding?.some((c) =>
    (!c.system || c.system === CONSENT_ACTION) && DISCLOSURE_ACTIONS.includes(c.code ?? '')))) return undefined;
  // `data` (specific resources) is refused when a Consent is written; should one get here, a permit
  // limited to it opens nothing and a deny ignores the limit (it closes more, never less).
  if (provision.data?.length && permit) return undefined;
  const period = between(parent.start, parent.end, provision.period?.start, provision.period?.end);
  const dataPeriod = between(parent.dataStart, parent.dataEnd, provision.dataPeriod?.start, provision.dataPeriod?.end);
  if (!period || !dataPeriod) return undefined;
  const scope: Scope = {
    grantees: intersect(parent.grantees, provision.actor?.length ? recipients(provision) : undefined),
    types: intersect(parent.types, provision.class?.length ? resourceTypes(provision.class) : undefined),
    purposes: intersect(parent.purposes, provision.purpose?.length ? provision.purpose.map((p) => p.code ?? '').filter(Boolean) : undefined),
    start: period.start,
    end: period.end,
    dataStart: dataPeriod.start,
    dataEnd: dataPeriod.end,
    codes: combine(parent.codes, provision.code?.length ? tokens(provision.code.flatMap((c) => c.coding ?? [])) : undefined),
    labels: combine(parent.labels, provision.securityLabel?.length ? tokens(provision.securityLabel) : undefined),
  };
  if (!scope.grantees.length || !scope.types.length || !scope.purposes.length || !scope.codes.length || !scope.labels.length) return undefined;
  return scope;
}

/** Organizations named as recipients (IRCP/PRCP). An actor in another role receives nothing. */
export function recipients(provision: ConsentProvision): string[] {
  return (provision.actor ?? [])
    .filter((a) => a.role?.coding?.some((c) => c.system === PARTICIPATION_TYPE && RECIPIENT_ROLES.includes(c.code ?? '')))
    .map((a) => /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(a.reference?.reference ?? '')?.[1])
    .filter((id): id is string => Boolean(id));
}

function resourceTypes(classes: Coding[]): string[] {
  return classes.filter((c) => !c.system || c.system === RESOURCE_TYPES).map((c) => c.code ?? '').filter(Boolean);
}

const tokens = (codings: Coding[]) => codings.filter((c) => c.code).map((c) => `${c.system ?? ''}|${c.code}`);

/**
 * A provision's list narrows its parent's: unstated (undefined) inherits; stated keeps what the parent
 * allows. A stated list that names nothing the gateway can match (an actor that is not a recipient
 * Organization, a class that is not a resource type) matches nothing: it never widens to everyone.
 */
function intersect(parent: string[], own: string[] | undefined): string[] {
  if (own === undefined) return parent;
  if (parent.includes(ANY)) return [...new Set(own)];
  return [...new Set(own.filter((x) => parent.includes(x)))];
}

/** Data matching the parent (one of its code sets) and carrying one of the provision's codes. */
function combine(parent: string[][], own: string[] | undefined): string[][] {
  if (own === undefined) return parent;
  const out = new Map<string, string[]>();
  for (const set of parent) {
    for (const token of new Set(own)) {
      const next = [...new Set([...set, token])].sort();
      out.set(next.join('\n'), next);
    }
  }
  return [...out.values()];
}

/** The parent's period cut by the provision's; undefined when they cannot overlap. */
function between(parentStart: Date | null, parentEnd: Date | null, start?: string, end?: string) {
  const ownStart = start ? parseDateRange(start)?.lo ?? null : null;
  const ownEnd = end ? parseDateRange(end)?.hi ?? null : null;
  const s = latest(parentStart, ownStart);
  const e = earliest(parentEnd, ownEnd);
  if (s && e && s >= e) return undefined;
  return { start: s, end: e };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const latest = (a: Date | null, b: Date | null) => (a && b ? (a > b ? a : b) : a ?? b);
const earliest = (a: Date | null, b: Date | null) => (a && b ? (a < b ? a : b) : a ?? b);
