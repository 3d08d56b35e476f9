/**
 * Valid resources validated per second, in this process (one core):
 *   - structure: the complete all-errors schema validator alone, then the quick validator that decides
 *     first since it exists;
 *   - whole validation: the complete validator followed by the rules stage (the way a valid resource went
 *     through before the quick validator), then validateResource as it is.
 * On two sets: the resources the gateway maps from the ingest benchmark's RDE^O11 messages (Patient,
 * MedicationRequest, with their gateway profiles), and test/validation/fixtures/valid (all stored types).
 *
 *   node --import tsx bench/validation.ts [rounds]
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { mapMessage, readMessage } from '../src/ingest/hl7v2/pipeline.js';
import { mappings } from '../src/ingest/mappings.js';
import { senderFactsOf } from '../src/ingest/sender.js';
import { fromRoot } from '../src/paths.js';
import { generated } from '../src/validation/generated.js';
import { hasErrors, validateResource, validateRules } from '../src/validation/index.js';
import { CLINIC_ID, clinicOrganization, rdeMessages } from './ingest-messages.js';

type Json = Record<string, unknown>;

function mappedSet(): Json[] {
  const clinic = senderFactsOf(CLINIC_ID, clinicOrganization());
  return rdeMessages(200, 'V').flatMap((m) => mapMessage(readMessage(m), clinic, mappings()).resources.map((r) => r.resource as unknown as Json));
}

function fixtureSet(): Json[] {
  const dir = fromRoot('test', 'validation', 'fixtures', 'valid');
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Json);
}

const { validators, quickValidators } = generated;
const PATHS: Record<string, (r: Json) => boolean> = {
  'structure, complete': (r) => validators[r.resourceType as string](r),
  'structure, quick': (r) => quickValidators[r.resourceType as string](r),
  'whole, complete + rules': (r) => validators[r.resourceType as string](r) && !hasErrors(validateRules(r)),
  'whole, validateResource': (r) => !hasErrors(validateResource(r)),
};

/** Resources/s of `check` over `set` for about `ms`. */
function rate(set: Json[], check: (r: Json) => boolean, ms: number): number {
  let done = 0;
  const started = performance.now();
  do {
    for (const r of set) if (!check(r)) throw new Error(`${String(r.resourceType)}/${String(r.id)} does not validate`);
    done += set.length;
  } while (performance.now() - started < ms);
  return done / ((performance.now() - started) / 1000);
}

export function benchValidation(rounds = 3, ms = 700): void {
  const sets: Record<string, Json[]> = { mapped: mappedSet(), fixtures: fixtureSet() };
  for (const [name, set] of Object.entries(sets)) {
    for (const check of Object.values(PATHS)) rate(set, check, 200); // warm-up
    const best: Record<string, number> = {};
    // Interleaved rounds, best of each: the machine is shared, the slower rounds measure the neighbours.
    for (let round = 0; round < rounds; round++) {
      for (const [label, check] of Object.entries(PATHS)) best[label] = Math.max(best[label] ?? 0, rate(set, check, ms));
    }
    const k = (label: string) => `${(best[label] / 1000).toFixed(1)}k/s`;
    const ratio = (a: string, b: string) => (best[b] / best[a]).toFixed(2);
    console.log(`${name} (${set.length} resources):`);
    console.log(`  structure: complete ${k('structure, complete')}, quick ${k('structure, quick')}  ×${ratio('structure, complete', 'structure, quick')}`);
    console.log(`  whole:     complete + rules ${k('whole, complete + rules')}, validateResource ${k('whole, validateResource')}  ×${ratio('whole, complete + rules', 'whole, validateResource')}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) benchValidation(Number(process.argv[2] ?? 3));
