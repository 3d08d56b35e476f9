import type { SourceValue } from '../source.js';
import type { TransformDefinition } from './types.js';
import { needsString, present, stringArg, textOf } from './types.js';

/**
 * People, places and contacts: XPN → HumanName (kanji IDE / kana SYL representation), XAD → Address,
 * XTN → ContactPoint, XCN → a reference to the practitioner by the institution's staff id.
 */

export const REPRESENTATION_URL = 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation';

const REPRESENTATION: Record<string, string> = { I: 'IDE', P: 'SYL', A: 'ABC' };
const NAME_USE: Record<string, string> = { L: 'official', D: 'usual', A: 'usual', N: 'nickname', M: 'maiden', B: 'official', C: 'old' };

/** XPN: family^given^middle^suffix^prefix^degree^type^representation. */
export const humanName: TransformDefinition = {
  inputs: [1, 1],
  apply: ([xpn]) => {
    const family = textOf(xpn.part(1).part(1));
    const given = [textOf(xpn.part(2)), textOf(xpn.part(3))].filter(Boolean);
    if (!family && !given.length) return undefined;
    const representation = REPRESENTATION[textOf(xpn.part(8)).toUpperCase()];
    const use = NAME_USE[textOf(xpn.part(7)).toUpperCase()];
    const suffix = textOf(xpn.part(4));
    const prefix = textOf(xpn.part(5));
    return present({
      extension: representation ? [{ url: REPRESENTATION_URL, valueCode: representation }] : undefined,
      use,
      text: [family, ...given].filter(Boolean).join(' '),
      family,
      given,
      prefix: prefix ? [prefix] : undefined,
      suffix: suffix ? [suffix] : undefined,
    });
  },
};

/** A name written as one text ("山田 太郎", "ヤマダ　タロウ"): family and given split at the first space. */
export const nameText: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: (args) => (args.representation === undefined || ['IDE', 'SYL', 'ABC'].includes(String(args.representation)) ? undefined : 'representation is IDE, SYL or ABC'),
  apply: ([v], args) => {
    const text = textOf(v).replace(/\u3000/g, ' ').replace(/\s+/g, ' ');
    if (!text) return undefined;
    const [family, ...given] = text.split(' ');
    const representation = stringArg(args, 'representation');
    return present({
      extension: representation ? [{ url: REPRESENTATION_URL, valueCode: representation }] : undefined,
      use: 'official',
      text,
      family,
      given: given.length ? [given.join(' ')] : undefined,
    });
  },
};

const ADDRESS_USE: Record<string, string> = { H: 'home', B: 'work', O: 'work', C: 'temp', M: 'home', BA: 'old' };
const COUNTRY: Record<string, string> = { JPN: 'JP', JP: 'JP' };

/** XAD: street^other^city^state^zip^country^type^other geographic designation (JAHIS: the whole address). */
export const address: TransformDefinition = {
  inputs: [1, 1],
  apply: ([xad]) => {
    const street = textOf(xad.part(1).part(1));
    const other = textOf(xad.part(2));
    const city = textOf(xad.part(3));
    const state = textOf(xad.part(4));
    const postalCode = textOf(xad.part(5));
    const country = textOf(xad.part(6)).toUpperCase();
    const whole = textOf(xad.part(8));
    const text = whole || [state, city, street, other].filter(Boolean).join('');
    if (!text && !postalCode) return undefined;
    const use = ADDRESS_USE[textOf(xad.part(7)).toUpperCase()];
    return present({
      use,
      text,
      line: [street, other].filter(Boolean),
      city,
      state,
      postalCode,
      country: country ? (COUNTRY[country] ?? country) : undefined,
    });
  },
};

/** Postal address from CSV columns: [postal code, address line 1, address line 2]. */
export const addressParts: TransformDefinition = {
  inputs: [1, 3],
  apply: ([zip, line1, line2]) => {
    const postalCode = textOf(zip);
    const lines = [textOf(line1), textOf(line2)].filter(Boolean);
    if (!postalCode && !lines.length) return undefined;
    return present({ use: 'home', text: lines.join(''), line: lines, postalCode, country: 'JP' });
  },
};

const TELECOM_USE: Record<string, string> = { PRN: 'home', WPN: 'work', ORN: 'home', VHN: 'temp', EMR: 'home', NET: 'home' };
const TELECOM_SYSTEM: Record<string, string> = { PH: 'phone', FX: 'fax', CP: 'phone', BP: 'pager', INTERNET: 'email', 'X.400': 'email', MD: 'other', TDD: 'other', TTY: 'other' };

/** XTN: [number]^use^equipment^email^…^unformatted number (12). */
export const telecom: TransformDefinition = {
  inputs: [1, 1],
  apply: ([xtn]) => {
    const equipment = textOf(xtn.part(3)).toUpperCase();
    const email = textOf(xtn.part(4));
    const value = textOf(xtn.part(12)) || textOf(xtn.part(1)) || email;
    if (!value) return undefined;
    const system = TELECOM_SYSTEM[equipment] ?? (email && value === email ? 'email' : 'phone');
    const use = equipment === 'CP' ? 'mobile' : TELECOM_USE[textOf(xtn.part(2)).toUpperCase()];
    return present({ system, value, use });
  },
};

/** A phone number written as text (CSV). */
export const phone: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => (textOf(v) ? { system: 'phone', value: textOf(v), use: 'home' } : undefined),
};

function xcnDisplay(xcn: SourceValue): string {
  return [textOf(xcn.part(2).part(1)), textOf(xcn.part(3))].filter(Boolean).join(' ');
}

/**
 * XCN (id^family^given…) → a reference by identifier: `{ type, identifier: { system, value: id }, display }`.
 * args.identifierSystem: the issuing institution's staff-id system; args.type: Practitioner by default.
 */
export const staffReference: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: needsString('identifierSystem'),
  apply: ([xcn], args) => {
    const id = textOf(xcn.part(1));
    const display = xcnDisplay(xcn);
    if (!id && !display) return undefined;
    return present({
      type: stringArg(args, 'type') ?? 'Practitioner',
      identifier: id ? { system: stringArg(args, 'identifierSystem'), value: id } : undefined,
      display,
    });
  },
};

/** [identifier, display] → a reference by identifier (an Organization by its 事業所番号…). args: type, identifierSystem. */
export const logicalReference: TransformDefinition = {
  inputs: [1, 2],
  checkArgs: needsString('type', 'identifierSystem'),
  apply: ([id, name], args) => {
    const value = textOf(id);
    const display = textOf(name);
    if (!value && !display) return undefined;
    return present({
      type: stringArg(args, 'type'),
      identifier: value ? { system: stringArg(args, 'identifierSystem'), value } : undefined,
      display,
    });
  },
};
