/**
 * HL7 v2 escape sequences (v2.5 §2.7): \F\ \S\ \T\ \R\ \E\ stand for the delimiters themselves,
 * \.br\ is a line break, \Xhh..\ hexadecimal data, \H\ \N\ highlighting (dropped), \Cxxyy\ and
 * \Mxxyyzz\ character-set switches (dropped: the whole message is decoded before parsing), \Zxx\
 * locally defined (dropped). A lone or unterminated escape character is kept as it is.
 */

export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export const STANDARD_DELIMITERS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

export function unescapeText(text: string, d: Delimiters): string {
  if (!d.escape || !text.includes(d.escape)) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== d.escape) {
      out += c;
      i++;
      continue;
    }
    const end = text.indexOf(d.escape, i + 1);
    if (end < 0) {
      out += text.slice(i);
      break;
    }
    const replaced = replacement(text.slice(i + 1, end), d);
    if (replaced === undefined) {
      // Not an escape sequence: keep the escape character and read on after it.
      out += c;
      i++;
      continue;
    }
    out += replaced;
    i = end + 1;
  }
  return out;
}

function replacement(body: string, d: Delimiters): string | undefined {
  switch (body) {
    case 'F': return d.field;
    case 'S': return d.component;
    case 'T': return d.subcomponent;
    case 'R': return d.repetition;
    case 'E': return d.escape;
    case 'P': return '';
    case 'H': case 'N': return '';
    case '.br': return '\n';
  }
  if (/^X(?:[0-9A-Fa-f]{2})+$/.test(body)) return hexText(body.slice(1));
  if (/^[CM][0-9A-Fa-f]{4,6}$/.test(body) || /^Z[^\\]*$/.test(body) || /^\.(?:sp|in|ti|sk|ce|fi|nf)[-+\d]*$/.test(body)) return '';
  return undefined;
}

/** Hexadecimal data as text; NUL bytes (padding, in practice) are dropped: no FHIR string holds one. */
function hexText(hex: string): string {
  const bytes = Buffer.from(hex, 'hex').filter((b) => b !== 0);
  const utf8 = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return utf8.includes('\uFFFD') ? Buffer.from(bytes).toString('latin1') : utf8;
}

/** Escapes text for a field value: delimiters become escape sequences, line breaks \.br\. */
export function escapeText(text: string, d: Delimiters = STANDARD_DELIMITERS): string {
  let out = '';
  for (const c of text.replace(/\r\n/g, '\n')) {
    if (c === d.escape) out += `${d.escape}E${d.escape}`;
    else if (c === d.field) out += `${d.escape}F${d.escape}`;
    else if (c === d.component) out += `${d.escape}S${d.escape}`;
    else if (c === d.subcomponent) out += `${d.escape}T${d.escape}`;
    else if (c === d.repetition) out += `${d.escape}R${d.escape}`;
    else if (c === '\r' || c === '\n') out += `${d.escape}.br${d.escape}`;
    else out += c;
  }
  return out;
}
