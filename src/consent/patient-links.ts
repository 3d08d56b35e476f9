/**
 * Patient identity across institutions: each institution keeps its own Patient, and a custodian joins
 * its record to another institution's with `Patient.link` (type seealso, see linking.ts). A search by
 * `patient=` then covers the patient and the records linked to it in either direction, one hop; what
 * each of those records' data shows is still decided row by row by ownership and Consent.
 */
export function linkedPatientsSql(id: string): string {
  return `SELECT ${id}::text
    UNION SELECT l.target_id FROM sp_reference l
      WHERE l.resource_type = 'Patient' AND l.id = ${id} AND l.param = 'link' AND l.target_type = 'Patient'
    UNION SELECT l.id FROM sp_reference l
      WHERE l.resource_type = 'Patient' AND l.param = 'link' AND l.target_id = ${id} AND l.target_type = 'Patient'`;
}
