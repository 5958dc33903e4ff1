import { checkDigest, digestHa1, digestResponse, DigestNonces, parseDigest } from '../../src/sip/digest.js';

// RFC 7616 §3.9.1: the same digest computation, with its published responses for MD5 and SHA-256.
const EXAMPLE = {
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  qop: 'auth',
  method: 'GET',
  uri: '/dir/index.html',
};

test("digest responses match RFC 7616's example for MD5 and SHA-256", () => {
  const ha1 = digestHa1('Mufasa', 'Circle of Life', 'http-auth@example.org');
  expect(digestResponse('MD5', ha1.MD5, EXAMPLE)).toBe('8ca523f5e9506fed4657c9700eebdbec');
  expect(digestResponse('SHA-256', ha1['SHA-256'], EXAMPLE)).toBe(
    '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
  );
});

test('an Authorization header is parsed and checked; realm, response and algorithm must all fit', () => {
  const ha1 = digestHa1('key-1', 'secret');
  const response = digestResponse('SHA-256', ha1['SHA-256'], { ...EXAMPLE, method: 'INVITE', uri: 'sip:a@b' });
  const header = `Digest username="key-1", realm="callrec", nonce="${EXAMPLE.nonce}", uri="sip:a@b", response="${response}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="${EXAMPLE.cnonce}"`;
  const credentials = parseDigest(header)!;
  expect(credentials).toMatchObject({ username: 'key-1', algorithm: 'SHA-256', uri: 'sip:a@b' });
  expect(checkDigest(credentials, 'INVITE', ha1)).toBe(true);
  expect(checkDigest(credentials, 'BYE', ha1)).toBe(false);
  expect(checkDigest({ ...credentials, realm: 'other' }, 'INVITE', ha1)).toBe(false);
  expect(checkDigest(credentials, 'INVITE', digestHa1('key-1', 'wrong'))).toBe(false);
  expect(parseDigest('Basic a2V5OnNlY3JldA==')).toBeNull();
  expect(
    parseDigest('Digest username="x", algorithm=SHA-512-256, realm="callrec", nonce="n", uri="u", response="r"'),
  ).toBeNull();
});

test('nonces: ours and fresh pass; forged, tampered or expired ones do not', () => {
  const nonces = new DigestNonces();
  const now = Date.now();
  const nonce = nonces.issue(now);
  expect(nonces.valid(nonce, now + 1000)).toBe(true);
  expect(nonces.valid(nonce, now + 6 * 60_000)).toBe(false);
  expect(
    nonces.valid(
      nonce.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
      now,
    ),
  ).toBe(false);
  expect(new DigestNonces().valid(nonce, now)).toBe(false);
  expect(nonces.valid('garbage', now)).toBe(false);
});
