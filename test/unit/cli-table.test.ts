// The CLI's tables line up on a terminal whatever the names: a column is padded by the columns its cells take there,
// not by their UTF-16 length (a CJK character takes two, a combining mark none).
import { describe, expect, it } from 'vitest';
import { displayWidth, table } from '../../src/cli/table';

describe('displayWidth', () => {
  it('counts terminal columns: wide characters two, marks alone none, a grapheme one', () => {
    expect(displayWidth('support agent')).toBe(13);
    expect(displayWidth('客服')).toBe(4);
    expect(displayWidth('Überblick 客服 system')).toBe(21);
    expect(displayWidth('U\u0308ber')).toBe(4); // U + combining diaeresis: one column
    expect(displayWidth('ｆｕｌｌ')).toBe(8); // fullwidth forms
    expect(displayWidth('サポート')).toBe(8);
    expect(displayWidth('고객')).toBe(4);
    expect(displayWidth('👍🏽 ok')).toBe(5); // an emoji with its skin tone: one grapheme, two columns
    expect(displayWidth('a\u200bb')).toBe(2); // a zero-width space takes none
  });
});

describe('table', () => {
  it('starts every column at the same terminal column on each row, CJK and combined names included', () => {
    const out = table(['handle', 'name', 'newest'], [['art_a', 'Überblick 客服 system', '1'], ['bnd_b', 'Bündel 客服', '22'], ['ses_c', 'U\u0308ber', '333'], ['art_d', 'plain', '4']], ['left', 'left', 'right']);
    expect(out.split('\n')).toEqual([
      'handle  name                   newest',
      '------  ---------------------  ------',
      'art_a   Überblick 客服 system       1',
      'bnd_b   Bündel 客服                22',
      'ses_c   U\u0308ber                      333',
      'art_d   plain                       4',
    ]);
    // Each row ends at the same column.
    expect(new Set(out.split('\n').map(displayWidth))).toEqual(new Set([37]));
  });
});
