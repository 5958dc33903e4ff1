import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { siprecCallId } from '../../src/sip/siprec.js';
import { digestHa1, digestResponse, type DigestAlgorithm } from '../../src/sip/digest.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * A recording server's answers to what SIPp's scenarios do not cover, from a UDP client written
 * here: 488 for a codec callrec cannot decode, 404 for an unknown agent, a due consent prompt
 * failing closed, the idle timeout ending a silent session with a BYE, a re-INVITE, and the
 * answers of the dialog's UPDATE and session timer to what is wrong.
 */

let ts: TestServer;
let sipPort: number;
beforeAll(async () => {
  const first = 30_000 + 2 * Math.floor(Math.random() * 4_000);
  ts = await startTestServer({
    env: {
      SIP_LISTEN: 'udp:127.0.0.1:0',
      RTP_PORTS: `${first}-${first + 99}`,
      STREAM_IDLE_TIMEOUT_SECONDS: '1',
      // Under RFC 4028's 90 s: the session-timer tests run in seconds.
      SIP_MIN_SE: '2',
    },
  });
  sipPort = ts.server.siprec!.transport.addresses()[0].port;
  await ts.server.store.tenants.updateSettings(ts.tenantId, (current) => ({
    ...current,
    sip_sources: ['127.0.0.1/32'],
  }));
});
afterAll(() => ts?.close());

/** A SIP client on a UDP socket: sends requests, collects what the server sends. */
async function client(address = '127.0.0.1') {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const port = socket.address().port;
  const received: SipMessage[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (data) => {
    received.push(parseMessage(data, false)!.message);
    for (const w of waiters.splice(0)) w();
  });
  const callId = `${randomBytes(4).toString('hex')}@127.0.0.1`;
  return {
    callId,
    received,
    send(
      method: string,
      agent: string,
      opts: {
        cseq?: number;
        toTag?: string;
        contentType?: string;
        body?: string;
        authorization?: string;
        headers?: string[];
      } = {},
    ) {
      const body = (opts.body ?? '').replace(/\n/g, '\r\n');
      const text = [
        `${method} sip:${agent}@127.0.0.1:${sipPort} SIP/2.0`,
        `Via: SIP/2.0/UDP ${address}:${port};branch=z9hG4bK${randomBytes(6).toString('hex')}`,
        `From: <sip:src@${address}:${port}>;tag=src`,
        `To: <sip:${agent}@127.0.0.1>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
        `Call-ID: ${callId}`,
        `CSeq: ${opts.cseq ?? 1} ${method}`,
        `Contact: <sip:src@${address}:${port}>;+sip.src`,
        'Require: siprec',
        ...(opts.authorization ? [`Authorization: ${opts.authorization}`] : []),
        ...(opts.headers ?? []),
        'Max-Forwards: 70',
        ...(opts.contentType ? [`Content-Type: ${opts.contentType}`] : []),
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n');
      socket.send(text, sipPort, '127.0.0.1');
    },
    /** Answers a request callrec sent (`status`, no body). */
    reply(request: SipMessage, code: number) {
      const text = [
        `SIP/2.0 ${code} ${code === 200 ? 'OK' : 'Error'}`,
        ...request.headers.getAll('via').map((v) => `Via: ${v}`),
        ...['From', 'To', 'Call-ID', 'CSeq'].map((h) => `${h}: ${request.headers.get(h)}`),
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      socket.send(text, sipPort, '127.0.0.1');
    },
    /** The first message `match` accepts, waiting for it. */
    async next(match: (m: SipMessage) => boolean): Promise<SipMessage> {
      for (;;) {
        const found = received.find(match);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close: () => socket.close(),
  };
}

const status =
  (code: number, method = 'INVITE') =>
  (m: SipMessage) =>
    m.kind === 'response' && m.status === code && m.headers.get('cseq')!.endsWith(method);

function offer(formats: string, rtpmaps: string): string {
  const stream = (label: number, port: number) =>
    `m=audio ${port} RTP/AVP ${formats}\n${rtpmaps}a=label:${label}\na=sendonly\n`;
  return `v=0\no=SRC 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n${stream(1, 49170)}${stream(2, 49172)}`;
}

test('an offer of codecs callrec cannot decode is 488; the first it decodes, with telephone-event and CN, is answered with just those, recvonly', async () => {
  await ts.agent('agent-codecs', { enabled: true, auto_record: true, consent_prompt: false });
  const refused = await client();
  refused.send('INVITE', 'agent-codecs', {
    contentType: 'application/sdp',
    body: offer('18 96 97', 'a=rtpmap:18 G729/8000\na=rtpmap:96 L16/16000/2\na=rtpmap:97 opus/44100/2\n'),
  });
  const notAcceptable = await refused.next(status(488));
  expect(notAcceptable.kind === 'response' && notAcceptable.reason).toMatch(
    'callrec takes PCMU, PCMA, G722, opus, L16 (mono, 8/16/24/48 kHz): none on every stream (offered: G729, L16, OPUS)',
  );
  refused.close();

  // G.722 by its static payload type (no rtpmap), first in the SRC's order; CN and telephone-event with it.
  const accepted = await client();
  accepted.send('INVITE', 'agent-codecs', {
    contentType: 'application/sdp',
    body: offer('96 9 8 13 101', 'a=rtpmap:96 iLBC/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n'),
  });
  const ok = await accepted.next(status(200));
  const sdp = ok.body.toString();
  expect(
    sdp.match(/m=audio \d+ RTP\/AVP 9 101 13\r\na=rtpmap:9 G722\/8000\r\na=rtpmap:101 telephone-event\/8000\r\n/g),
  ).toHaveLength(2);
  expect(sdp.match(/a=recvonly/g)).toHaveLength(2);
  expect(sdp).not.toMatch(/PCMA|iLBC/);
  const toTag = /tag=(\w+)/.exec(ok.headers.get('to')!)![1];
  accepted.send('ACK', 'agent-codecs', { toTag });
  // A re-INVITE (a session refresh) gets the same answer.
  accepted.send('INVITE', 'agent-codecs', { cseq: 2, toTag, contentType: 'application/sdp', body: offer('8', '') });
  const again = await accepted.next(
    (m) => m.kind === 'response' && m.status === 200 && m.headers.get('cseq') === '2 INVITE',
  );
  expect(again.body.toString().replace(/^o=.*$/m, '')).toBe(sdp.replace(/^o=.*$/m, ''));
  // a=inactive pauses the recording (answered inactive); sendonly again resumes it.
  accepted.send('INVITE', 'agent-codecs', {
    cseq: 3,
    toTag,
    contentType: 'application/sdp',
    body: offer('8', '').replace(/a=sendonly/g, 'a=inactive'),
  });
  const paused = await accepted.next(
    (m) => m.kind === 'response' && m.status === 200 && m.headers.get('cseq') === '3 INVITE',
  );
  expect(paused.body.toString().match(/a=inactive/g)).toHaveLength(2);
  const callId = siprecCallId(accepted.callId);
  // RTP keeps the session from the idle timeout (1 s here) while the test waits.
  const rtpPort = Number(/m=audio (\d+)/.exec(sdp)![1]);
  const rtp = dgram.createSocket('udp4');
  let seq = 0;
  const recordingStatus = async () => {
    const packet = Buffer.alloc(172, 0xd5);
    packet.writeUInt16BE(0x8009, 0);
    packet.writeUInt16BE(seq, 2);
    packet.writeUInt32BE(160 * seq++, 4);
    rtp.send(packet, rtpPort, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 20));
    return ((await (await ts.api(`/api/calls/${callId}`)).json()) as { recording_status: string }).recording_status;
  };
  while ((await recordingStatus()) !== 'paused');
  accepted.send('INVITE', 'agent-codecs', { cseq: 4, toTag, contentType: 'application/sdp', body: offer('8', '') });
  await accepted.next((m) => m.kind === 'response' && m.status === 200 && m.headers.get('cseq') === '4 INVITE');
  while ((await recordingStatus()) !== 'recording');
  rtp.close();
  accepted.send('BYE', 'agent-codecs', { cseq: 5, toTag });
  await accepted.next(status(200, 'BYE'));
  accepted.close();
});

test('an unknown agent (the Request-URI user part) is 404', async () => {
  const c = await client();
  c.send('INVITE', 'no-such-agent', { contentType: 'application/sdp', body: offer('0', '') });
  const notFound = await c.next(status(404));
  expect(notFound.kind === 'response' && notFound.reason).toMatch(/ERR_UNKNOWN_AGENT/);
  c.close();
});

test('a due consent prompt fails closed (an SRS cannot play it); a session silent past the idle timeout is ended with a BYE', async () => {
  await ts.agent('agent-consent', { enabled: true, auto_record: true, consent_prompt: true });
  const c = await client();
  c.send('INVITE', 'agent-consent', { contentType: 'application/sdp', body: offer('0', '') });
  const ok = await c.next(status(200));
  c.send('ACK', 'agent-consent', { toTag: /tag=(\w+)/.exec(ok.headers.get('to')!)![1] });
  // No RTP: STREAM_IDLE_TIMEOUT_SECONDS (1 s here) ends the session, and callrec hangs up.
  const bye = await c.next((m) => m.kind === 'request' && m.method === 'BYE');
  expect(bye.headers.get('reason')).toMatch(/ERR_STREAM_IDLE/);
  expect(bye.headers.get('call-id')).toBe(c.callId);
  const callId = siprecCallId(c.callId);
  for (;;) {
    const view = (await (await ts.api(`/api/calls/${callId}`)).json()) as {
      status: string;
      consent: { outcome: string; reason: string };
      recording_status: string;
    };
    if (view.status === 'ended') {
      expect(view.consent).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('one-way') });
      expect(view.recording_status).toBe('none');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  c.close();
});

test("digest (RFC 8760): an SRC outside sip_sources is challenged for SHA-256 and MD5, and a sip_digest key's id and secret pass either; a wrong secret is 403", async () => {
  await ts.agent('agent-digest', { enabled: true, auto_record: true, consent_prompt: false });
  const created = (await (
    await ts.api('/api/keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'sbc', scopes: ['media:stream'], sip_digest: true }),
    })
  ).json()) as { id: string; secret: string; sip_digest: boolean };
  expect(created.sip_digest).toBe(true);
  const uri = `sip:agent-digest@127.0.0.1:${sipPort}`;
  const authorization = (algorithm: DigestAlgorithm, nonce: string, secret: string) => {
    const cnonce = randomBytes(8).toString('hex');
    const response = digestResponse(algorithm, digestHa1(created.id, secret)[algorithm], {
      nonce,
      nc: '00000001',
      cnonce,
      qop: 'auth',
      method: 'INVITE',
      uri,
    });
    return `Digest username="${created.id}", realm="callrec", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}, qop=auth, nc=00000001, cnonce="${cnonce}"`;
  };
  for (const algorithm of ['SHA-256', 'MD5'] as const) {
    const c = await client('127.0.0.2');
    c.send('INVITE', 'agent-digest', { contentType: 'application/sdp', body: offer('0', '') });
    const unauthorized = await c.next(status(401));
    const challenges = unauthorized.headers.getAll('www-authenticate');
    expect(challenges.map((v) => /algorithm=([\w-]+)/.exec(v)![1])).toEqual(['SHA-256', 'MD5']);
    const nonce = /nonce="([^"]+)"/.exec(challenges[0])![1];
    c.send('INVITE', 'agent-digest', {
      cseq: 2,
      contentType: 'application/sdp',
      body: offer('0', ''),
      authorization: authorization(algorithm, nonce, 'not-the-secret'),
    });
    await c.next(status(403));
    c.close();
    // The failure above spent one of 127.0.0.2's AUTH_FAILURES_PER_IP (20 a minute): it may try again.
    const d = await client('127.0.0.2');
    d.send('INVITE', 'agent-digest', {
      contentType: 'application/sdp',
      body: offer('0', ''),
      authorization: authorization(algorithm, nonce, created.secret),
    });
    const ok = await d.next(status(200));
    d.send('ACK', 'agent-digest', { toTag: /tag=(\w+)/.exec(ok.headers.get('to')!)![1] });
    d.send('BYE', 'agent-digest', { cseq: 3, toTag: /tag=(\w+)/.exec(ok.headers.get('to')!)![1] });
    await d.next(status(200, 'BYE'));
    d.close();
  }
});

test('session timers and UPDATE: an interval under Min-SE is 422 with Min-SE (INVITE and refresh); UPDATE outside a dialog is 481, bad metadata in one 400, an older CSeq 500', async () => {
  await ts.agent('agent-timer', { enabled: true, auto_record: true, consent_prompt: false });
  const c = await client();
  c.send('INVITE', 'agent-timer', {
    contentType: 'application/sdp',
    body: offer('0', ''),
    headers: ['Supported: timer', 'Session-Expires: 1'],
  });
  const tooSmall = await c.next(status(422));
  expect(tooSmall.headers.get('min-se')).toBe('2');
  expect(tooSmall.kind === 'response' && tooSmall.reason).toBe('Session Interval Too Small');
  c.send('INVITE', 'agent-timer', {
    cseq: 2,
    contentType: 'application/sdp',
    body: offer('0', ''),
    headers: ['Supported: timer', 'Session-Expires: 90'],
  });
  const ok = await c.next(status(200));
  expect(ok.headers.get('session-expires')).toBe('90;refresher=uac');
  expect(ok.headers.getAll('require')).toContain('timer');
  expect(ok.headers.getAll('allow')).toContain('UPDATE');
  const toTag = /tag=(\w+)/.exec(ok.headers.get('to')!)![1];
  c.send('ACK', 'agent-timer', { cseq: 2, toTag });
  c.send('UPDATE', 'agent-timer', { cseq: 3, toTag, headers: ['Supported: timer', 'Session-Expires: 1'] });
  expect((await c.next(status(422, 'UPDATE'))).headers.get('min-se')).toBe('2');
  c.send('UPDATE', 'agent-timer', {
    cseq: 4,
    toTag,
    contentType: 'application/rs-metadata+xml',
    body: '<recording><participant',
  });
  await c.next(status(400, 'UPDATE'));
  // A request older than one already taken is refused (it would undo a later update).
  c.send('UPDATE', 'agent-timer', { cseq: 4, toTag });
  await c.next((m) => m.kind === 'response' && m.status === 500 && m.headers.get('cseq') === '4 UPDATE');
  // A refresh without an offer: 200 without a body.
  c.send('UPDATE', 'agent-timer', { cseq: 5, toTag, headers: ['Supported: timer', 'Session-Expires: 120'] });
  const refreshed = await c.next(status(200, 'UPDATE'));
  expect(refreshed.headers.get('session-expires')).toBe('120;refresher=uac');
  expect(refreshed.body.length).toBe(0);
  c.send('BYE', 'agent-timer', { cseq: 6, toTag });
  await c.next(status(200, 'BYE'));
  c.send('UPDATE', 'agent-timer', { cseq: 7, toTag });
  await c.next(status(481, 'UPDATE'));
  c.close();
});

test('asked to refresh (refresher=uas), callrec sends UPDATEs at half the interval; one left unanswered lets the session expire: BYE', async () => {
  await ts.agent('agent-refresher', { enabled: true, auto_record: true, consent_prompt: false });
  const c = await client();
  c.send('INVITE', 'agent-refresher', {
    contentType: 'application/sdp',
    body: offer('0', ''),
    headers: ['Supported: timer', 'Session-Expires: 6;refresher=uas', 'Allow: INVITE, ACK, BYE, UPDATE'],
  });
  const ok = await c.next(status(200));
  expect(ok.headers.get('session-expires')).toBe('6;refresher=uas');
  const toTag = /tag=(\w+)/.exec(ok.headers.get('to')!)![1];
  c.send('ACK', 'agent-refresher', { toTag });
  // RTP keeps the session from the idle timeout (1 s here) while the timer runs.
  const rtpPort = Number(/m=audio (\d+)/.exec(ok.body.toString())![1]);
  const rtp = dgram.createSocket('udp4');
  let seq = 0;
  const media = setInterval(() => {
    const packet = Buffer.alloc(172, 0xff);
    packet.writeUInt16BE(0x8000, 0);
    packet.writeUInt16BE(seq, 2);
    packet.writeUInt32BE(160 * seq++, 4);
    rtp.send(packet, rtpPort, '127.0.0.1');
  }, 20);
  const updates = (m: SipMessage) => m.kind === 'request' && m.method === 'UPDATE';
  const first = await c.next(updates);
  expect(first.headers.get('session-expires')).toBe('6;refresher=uas');
  expect(first.headers.get('call-id')).toBe(c.callId);
  expect(first.kind === 'request' && first.uri).toMatch(/^sip:src@127\.0\.0\.1:\d+$/);
  c.reply(first, 200);
  // Answered: the interval starts over, and the next refresh comes in a new transaction.
  const second = await c.next((m) => updates(m) && m.headers.get('cseq') !== first.headers.get('cseq'));
  expect(Number.parseInt(second.headers.get('cseq')!, 10)).toBeGreaterThan(
    Number.parseInt(first.headers.get('cseq')!, 10),
  );
  // Left unanswered: the session expires (4 s after the last refresh) and callrec hangs up.
  const bye = await c.next((m) => m.kind === 'request' && m.method === 'BYE');
  expect(bye.headers.get('reason')).toMatch(/ERR_SIP_SESSION_EXPIRED: no session refresh within 6 s/);
  c.reply(bye, 200);
  clearInterval(media);
  rtp.close();
  c.close();
}, 30_000);
