/**
 * Folding for string search, applied to index values and query values alike: NFKC (half-width kana and
 * full-width Latin become their standard forms), lower case, hiragana folded to katakana (so やまだ finds
 * ヤマダ), and white space (including the ideographic space) removed, so 山田 太郎 = 山田太郎.
 */
export function normalizeString(value: string): string {
  return value
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u3041-\u3096]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) + 0x60))
    .replace(/[\s\u3000]+/g, '')
    .normalize('NFC');
}
