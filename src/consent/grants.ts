import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import { parseDateRange } from '../store/search/dates.js';

/** One row of consent_grant: what a provision of an active Consent permits or denies, to whom. */
export interface ConsentGrant {
  consentId: string;
  owner: string;
  patientId: string;
  grantee: string;
  resourceType: string;
  purpose: string;
  permit: boolean;
  depth: number;
  periodStart: Date | null;
  periodEnd: Date | null;
  provision: string;
}

export const ANY = '*';
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';

interface Scope {
  grantees: string[];
  types: string[];
  purposes: string[];
  start: Date | null;
  end: Date | null;
}

const UNRESTRICTED: Scope = { grantees: [ANY], types: [ANY], purposes: [ANY], start: null, end: null };

/**
 * Flattens a Consent into grant rows. Only an active Consent about a Patient grants anything, and it
 * only ever concerns its recorder's (`owner`'s) data: a Consent can never open another owner's data.
 * A nested provision narrows its parent: what it leaves unstated (actor, class, purpose, period) it
 * inherits, and its period is cut to the parent's.
 */
export function grantsOf(consent: Consent, consentId: string, owner: string): ConsentGrant[] {
  const patientId = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(consent.patient?.reference ?? '')?.[1];
  if (consent.status !== 'active' || !patientId || !consent.provision) return [];
  const grants: ConsentGrant[] = [];
  const visit = (provision: ConsentProvision, parent: Scope, depth: number, path: string) => {
    const scope = narrow(parent, provision);
    if (!scope) return; // a period that cannot overlap its parent's opens nothing
    const permit = (provision.type ?? 'permit') === 'permit';
    for (const grantee of scope.grantees) {
      for (const resourceType of scope.types) {
        for (const purpose of scope.purposes) {
          grants.push({
            consentId, owner, patientId, grantee, resourceType, purpose, permit, depth,
            periodStart: scope.start, periodEnd: scope.end, provision: path,
          });
        }
      }
    }
    provision.provision?.forEach((child, i) => visit(child, scope, depth + 1, `${path}.provision[${i}]`));
  };
  visit(consent.provision, UNRESTRICTED, 0, 'Consent.provision');
  return grants;
}

function narrow(parent: Scope, provision: ConsentProvision): Scope | undefined {
  const grantees = (provision.actor ?? [])
    .map((a) => /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(a.reference?.reference ?? '')?.[1])
    .filter((id): id is string => Boolean(id));
  const types = (provision.class ?? []).filter((c) => !c.system || c.system === RESOURCE_TYPES).map((c) => c.code!).filter(Boolean);
  const purposes = (provision.purpose ?? []).map((p) => p.code!).filter(Boolean);
  const own = periodOf(provision.period?.start, provision.period?.end);
  const start = latest(parent.start, own.start);
  const end = earliest(parent.end, own.end);
  if (start && end && start >= end) return undefined;
  return {
    grantees: intersect(parent.grantees, provision.actor?.length ? grantees : undefined),
    types: intersect(parent.types, provision.class?.length ? types : undefined),
    purposes: intersect(parent.purposes, provision.purpose?.length ? purposes : undefined),
    start,
    end,
  };
}

/**
 * A provision's list narrows its parent's: unstated (undefined) inherits; stated keeps what the parent
 * allows. A stated list that names nothing the gateway can match (an actor that is not an Organization,
 * a class that is not a resource type) matches nothing: it never widens to everyone.
 */
function intersect(parent: string[], own: string[] | undefined): string[] {
  if (own === undefined) return parent;
  if (parent.includes(ANY)) return own;
  return own.filter((x) => parent.includes(x));
}

function periodOf(start?: string, end?: string): { start: Date | null; end: Date | null } {
  return {
    start: start ? parseDateRange(start)?.lo ?? null : null,
    end: end ? parseDateRange(end)?.hi ?? null : null,
  };
}

const latest = (a: Date | null, b: Date | null) => (a && b ? (a > b ? a : b) : a ?? b);
const earliest = (a: Date | null, b: Date | null) => (a && b ? (a < b ? a : b) : a ?? b);
