import {
  expiryText,
  fillName,
  relativeTime,
  remedyParts,
  spokenText,
} from '../../../../shared/http/console/text';

describe('remedyParts: a remedy as text, code spans and links, never markup', () => {
  it.each([
    ['plain words', 'Try again shortly.', [{ kind: 'text', text: 'Try again shortly.' }]],
    [
      'a code span',
      'Run `Get-Mailbox a@b` first.',
      [
        { kind: 'text', text: 'Run ' },
        { kind: 'code', text: 'Get-Mailbox a@b' },
        { kind: 'text', text: ' first.' },
      ],
    ],
    [
      'an https link, the full stop after it left out',
      'Open https://login.microsoftonline.com/x/adminconsent?client_id=1.',
      [
        { kind: 'text', text: 'Open ' },
        {
          kind: 'link',
          text: 'https://login.microsoftonline.com/x/adminconsent?client_id=1',
          href: 'https://login.microsoftonline.com/x/adminconsent?client_id=1',
        },
        { kind: 'text', text: '.' },
      ],
    ],
    [
      'a URL inside a code span stays code',
      '`curl https://x.test/a`',
      [{ kind: 'code', text: 'curl https://x.test/a' }],
    ],
    [
      'an unpaired backtick stays text',
      'a `b` c `d',
      [
        { kind: 'text', text: 'a ' },
        { kind: 'code', text: 'b' },
        { kind: 'text', text: ' c `d' },
      ],
    ],
    [
      'markup stays text',
      '<img src=x onerror=alert(1)>',
      [{ kind: 'text', text: '<img src=x onerror=alert(1)>' }],
    ],
    ['http is not a link', 'see http://x.test', [{ kind: 'text', text: 'see http://x.test' }]],
  ])('%s', (_what, remedy, parts) => {
    expect(remedyParts(remedy)).toEqual(parts);
  });

  it('fills the connection name into a literal {name}', () => {
    expect(remedyParts('GET /api/connections/{name} shows it', 'support-in')).toEqual([
      { kind: 'text', text: 'GET /api/connections/support-in shows it' },
    ]);
    expect(fillName('`POST /api/connections/{name}/refresh`', 'a')).toBe('`POST /api/connections/a/refresh`');
  });
});

describe('relative times', () => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  it.each([
    ['2026-12-03T12:42:00Z', 'in 42 min'],
    ['2026-12-03T11:57:00Z', '3 min ago'],
    ['2026-12-03T12:00:20Z', 'just now'],
    ['2026-12-03T15:00:00Z', 'in 3 h'],
    ['2026-12-04T12:00:00Z', 'in 1 day'],
    ['2026-11-30T12:00:00Z', '3 days ago'],
    ['not a time', ''],
  ])('%s is %p', (at, text) => {
    expect(relativeTime(at, now)).toBe(text);
  });

  it('says whether a token expires or expired', () => {
    expect(expiryText('2026-12-03T12:42:00Z', now)).toBe('expires in 42 min');
    expect(expiryText('2026-12-03T11:00:00Z', now)).toBe('expired 1 h ago');
  });
});

describe('spokenText: what the live region reads aloud', () => {
  it('fills the name in and drops the backticks of code spans', () => {
    expect(spokenText('Run `Get-Mailbox {name}` then test {name} again.', 'support-in')).toBe(
      'Run Get-Mailbox support-in then test support-in again.',
    );
  });
  it('keeps a lone backtick and links as written', () => {
    expect(spokenText('See https://learn.microsoft.com/x. A ` alone.')).toBe(
      'See https://learn.microsoft.com/x. A ` alone.',
    );
  });
});
