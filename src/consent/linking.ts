import type { HumanName, Patient } from '@medplum/fhirtypes';
import type { Caller } from '../fhir/caller.js';
import { badRequest, FhirError, forbidden, notFound } from '../fhir/outcome.js';
import { parameterNamed, parametersBody } from '../fhir/operations/parameters.js';
import type { FhirResult } from '../fhir/results.js';
import type { FhirService } from '../fhir/service.js';
import { normalizeString } from '../store/search/normalize.js';

const REPRESENTATION = 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation';

/**
 * Patient/{id}/$link and $unlink: the clinic's patient and the facility's resident are one person
 * with two records. A custodian links its own Patient to another institution's Patient it may see
 * (through that institution's Consent), after a demographic check: kana name, birth date and gender
 * must agree. The link is a `Patient.link` (type seealso) on the custodian's own record, a new audited
 * version; searches by `patient=` then follow it, still filtered by Consent. Never automatic.
 */
export async function changeLink(fhir: FhirService, caller: Caller, ownId: string, parameters: unknown, unlink: boolean): Promise<FhirResult> {
  const otherId = otherPatientId(parameters);
  if (otherId === ownId) throw badRequest('A Patient cannot be linked to itself');
  const own = await readPatient(fhir, caller, ownId);
  if (!caller.organizationId || !own.meta?.tag?.some((t) => t.code === `Organization/${caller.organizationId}`)) {
    throw forbidden('Only the custodian of a Patient links it / 患者を保有する機関のみ連携できます');
  }
  const links = (own.link ?? []).filter((l) => l.other?.reference !== `Patient/${otherId}`);
  if (!unlink) {
    const other = await readPatient(fhir, caller, otherId);
    const mismatches = demographicMismatches(own, other);
    if (mismatches.length) {
      throw new FhirError(422, mismatches.map((m) => ({
        code: 'business-rule' as const, expression: [`Patient.${m}`],
        diagnostics: `The two records disagree on ${m}: not linked / ${m}が一致しないため連携できません`,
      })));
    }
    links.push({ other: { reference: `Patient/${otherId}` }, type: 'seealso' });
  }
  const { meta: _meta, ...body } = own;
  const next: Patient = { ...body, ...(links.length ? { link: links } : {}) };
  if (!links.length) delete next.link;
  return fhir.update(caller, 'Patient', ownId, next);
}

function otherPatientId(parameters: unknown): string {
  if (!parametersBody(parameters)) throw badRequest('Send Parameters with other = Reference(Patient/<id>)');
  const reference = parameterNamed(parameters, 'other')?.valueReference?.reference ?? '';
  const id = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(reference)?.[1];
  if (!id) throw badRequest('Parameter other must reference Patient/<id>', ['Parameters.parameter']);
  return id;
}

async function readPatient(fhir: FhirService, caller: Caller, id: string): Promise<Patient> {
  const result = await fhir.read(caller, 'Patient', id);
  if (typeof result.body !== 'string') throw notFound(`Patient/${id} is not known / 見つかりません`);
  return JSON.parse(result.body) as Patient;
}

function demographicMismatches(a: Patient, b: Patient): string[] {
  const out: string[] = [];
  if (!a.birthDate || a.birthDate !== b.birthDate) out.push('birthDate');
  if (!a.gender || a.gender !== b.gender) out.push('gender');
  const ka = kanaNames(a);
  const kb = new Set(kanaNames(b));
  if (!ka.length || !ka.some((n) => kb.has(n))) out.push('name');
  return out;
}

/** Kana (SYL) names folded for comparison; all names when a record carries no kana. */
function kanaNames(p: Patient): string[] {
  const names = p.name ?? [];
  const syl = names.filter((n) => n.extension?.some((e) => e.url === REPRESENTATION && e.valueCode === 'SYL'));
  return (syl.length ? syl : names).map(fullName).filter(Boolean);
}

const fullName = (n: HumanName) => normalizeString(`${n.family ?? ''}${(n.given ?? []).join('')}` || n.text || '');
