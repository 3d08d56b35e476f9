import { codeableConcept, coding, conceptByName, conceptMap, lookup } from './codes.js';
import { date, dateTime, instant, period, periodEnd, periodStart } from './dates.js';
import { address, addressParts, humanName, logicalReference, nameText, phone, staffReference, telecom } from './people.js';
import { decimal, duration, integer, observationValue, perDay, quantity, referenceRange } from './quantities.js';
import { frequencyTiming, identifier, join, text } from './text.js';
import type { TransformDefinition } from './types.js';

export type { TransformDefinition, TransformContext, Args } from './types.js';
export { TransformError } from './types.js';

/** Every transform a mapping file may name. Adding one here is how the mapping language grows. */
export const TRANSFORMS: Readonly<Record<string, TransformDefinition>> = {
  text, identifier, join, frequencyTiming,
  dateTime, date, instant, period, periodStart, periodEnd,
  humanName, nameText, address, addressParts, telecom, phone, staffReference, logicalReference,
  codeableConcept, coding, lookup, conceptMap, conceptByName,
  quantity, decimal, integer, duration, perDay, referenceRange, observationValue,
};
