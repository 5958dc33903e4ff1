import { matchesAor } from '../../src/agents/settings.js';
import { SipHeaders } from '../../src/sip/message.js';
import { ParticipantRoster, readMetadata } from '../../src/sip/metadata.js';
import { expiryMs, negotiateSessionTimer, SessionTimer } from '../../src/sip/session-timer.js';

/*
 * What a recording session's dialog does between its INVITE and its BYE, below the SIP layer:
 * metadata updates applied to the participants, the session-timer terms, the agent's AOR.
 */

const doc = (body: string) =>
  readMetadata(`<?xml version="1.0"?><recording xmlns="urn:ietf:params:xml:ns:recording:1">${body}</recording>`);

function roster() {
  const first = doc(`
    <participant participant_id="alice"><nameID aor="sip:alice@carrier.example"><name>Alice</name></nameID></participant>
    <participant participant_id="bob"><nameID aor="sip:bob@agents.example"><name>Bob</name></nameID></participant>
    <stream stream_id="s1"><label>1</label></stream><stream stream_id="s2"><label>2</label></stream>
    <participantstreamassoc participant_id="alice"><send>s1</send></participantstreamassoc>
    <participantstreamassoc participant_id="bob"><send>s2</send></participantstreamassoc>`);
  return new ParticipantRoster(
    new Map([
      ['1', 'caller'],
      ['2', 'agent'],
    ]),
    first,
  );
}

test('a partial update: the transferee takes the stream (and its leg) of who left, at the times the metadata says', () => {
  const r = roster();
  const changed = r.apply(
    doc(`<datamode>partial</datamode>
      <participant participant_id="carol"><nameID aor="sip:carol@carrier.example"><name>Carol</name></nameID></participant>
      <participantsessionassoc participant_id="alice"><disassociate-time>2026-03-01T10:00:05+01:00</disassociate-time></participantsessionassoc>
      <participantsessionassoc participant_id="carol"><associate-time>2026-03-01T09:00:05Z</associate-time></participantsessionassoc>
      <participantstreamassoc participant_id="carol"><send>s1</send></participantstreamassoc>`),
    '2026-03-01T09:00:06.000Z',
  );
  expect(changed).toBe(true);
  expect(r.list()).toEqual([
    {
      id: 'alice',
      aor: 'sip:alice@carrier.example',
      name: 'Alice',
      leg: 'caller',
      left_at: '2026-03-01T09:00:05.000Z',
    },
    { id: 'bob', aor: 'sip:bob@agents.example', name: 'Bob', leg: 'agent' },
    {
      id: 'carol',
      aor: 'sip:carol@carrier.example',
      name: 'Carol',
      leg: 'caller',
      joined_at: '2026-03-01T09:00:05.000Z',
    },
  ]);
  // The same update again changes nothing.
  expect(
    r.apply(
      doc(
        `<datamode>partial</datamode><participant participant_id="bob"><nameID aor="sip:bob@agents.example"/></participant>`,
      ),
      '2026-03-01T09:00:07.000Z',
    ),
  ).toBe(false);
});

test('a complete update: who it no longer lists has left (at its arrival), a rename is kept, a rejoin clears left_at', () => {
  const r = roster();
  r.apply(
    doc(`<participant participant_id="bob"><nameID aor="sip:robert@agents.example"><name>Robert</name></nameID></participant>
      <stream stream_id="s2"><label>2</label></stream>
      <participantstreamassoc participant_id="bob"><send>s2</send></participantstreamassoc>`),
    '2026-03-01T09:00:06.000Z',
  );
  expect(r.list()).toEqual([
    {
      id: 'alice',
      aor: 'sip:alice@carrier.example',
      name: 'Alice',
      leg: 'caller',
      left_at: '2026-03-01T09:00:06.000Z',
    },
    { id: 'bob', aor: 'sip:robert@agents.example', name: 'Robert', leg: 'agent' },
  ]);
  r.apply(
    doc(
      `<datamode>partial</datamode><participantsessionassoc participant_id="alice"><associate-time>2026-03-01T09:01:00Z</associate-time></participantsessionassoc>`,
    ),
    '2026-03-01T09:01:00.000Z',
  );
  expect(r.list()[0]).not.toHaveProperty('left_at');
});

test('a stream label the session does not record gives no leg; participants are bounded', () => {
  const r = roster();
  const many = Array.from(
    { length: 100 },
    (_, i) => `<participant participant_id="p${i}"><nameID aor="sip:p${i}@x"/></participant>`,
  ).join('');
  r.apply(
    doc(
      `<datamode>partial</datamode>${many}<stream stream_id="v"><label>9</label></stream><participantstreamassoc participant_id="p0"><send>v</send></participantstreamassoc>`,
    ),
    '2026-03-01T09:00:06.000Z',
  );
  expect(r.list()).toHaveLength(64);
  expect(r.list()[2]).toMatchObject({ id: 'p0', leg: null });
});

function headers(fields: Record<string, string>): SipHeaders {
  const h = new SipHeaders();
  for (const [name, value] of Object.entries(fields)) h.add(name, value);
  return h;
}

test('session-timer terms (RFC 4028 §9): the UAC refreshes unless it asks callrec to or cannot; under Min-SE is too small', () => {
  const terms = (fields: Record<string, string>, minSe = 90, allowsUpdate = false) =>
    negotiateSessionTimer(headers(fields), minSe, allowsUpdate);
  expect(terms({ Supported: 'timer, siprec', 'Session-Expires': '1800;refresher=uac' })).toEqual({
    expires: 1800,
    refresher: 'uac',
    uacSupports: true,
  });
  // Compact form, no refresher named: callrec picks the UAC.
  expect(terms({ k: 'timer', x: '300' })).toMatchObject({ expires: 300, refresher: 'uac' });
  // Supported: timer without Session-Expires: callrec asks for 1800 s (or a larger Min-SE, its own or the request's).
  expect(terms({ Supported: 'timer' })).toMatchObject({ expires: 1800, refresher: 'uac' });
  expect(terms({ Supported: 'timer' }, 3600)).toMatchObject({ expires: 3600 });
  expect(terms({ Supported: 'timer', 'Min-SE': '2400' })).toMatchObject({ expires: 2400 });
  // An interval past a day is lowered to one (a UAS may lower it; a timer cannot run for 300 years).
  expect(terms({ Supported: 'timer', 'Session-Expires': '9999999999' })).toMatchObject({ expires: 86_400 });
  expect(terms({ Supported: 'timer', 'Session-Expires': '60' })).toBe('too small');
  expect(terms({ 'Session-Expires': '60' })).toBe('too small');
  // callrec refreshes (with UPDATE) when asked to, or when the UAC does not support timer (a proxy asked), if the SRC takes UPDATE.
  expect(terms({ Supported: 'timer', 'Session-Expires': '1800;refresher=uas' }, 90, true)).toEqual({
    expires: 1800,
    refresher: 'uas',
    uacSupports: true,
  });
  expect(terms({ 'Session-Expires': '1800' }, 90, true)).toEqual({
    expires: 1800,
    refresher: 'uas',
    uacSupports: false,
  });
  expect(terms({ Supported: 'timer', 'Session-Expires': '1800;refresher=uas' })).toBeNull();
  expect(terms({ 'Session-Expires': '1800' })).toBeNull();
  expect(terms({})).toBeNull();
  // §10: the interval less min(32 s, a third of it).
  expect(expiryMs(1800)).toBe(1_768_000);
  expect(expiryMs(90)).toBe(60_000);
});

test('the session timer expires without a refresh; a refresh starts it over; stopped, it never fires; as refresher it asks at half the interval', async () => {
  const short = { expires: 0.15, refresher: 'uac' as const, uacSupports: true };
  const expired: number[] = [];
  const never = () => expired.push(-9);
  const timer = new SessionTimer((s) => expired.push(s.terms.expires), never);
  const done = new Promise((resolve) => timer.on('stateChange', (_, next) => next.status === 'expired' && resolve(0)));
  timer.refreshed(short);
  await done;
  expect(expired).toEqual([0.15]);
  // Refreshed at once with a minute: the first interval's 100 ms pass and nothing expires.
  const refreshed = new SessionTimer(() => expired.push(-1), never);
  refreshed.refreshed(short);
  refreshed.refreshed({ ...short, expires: 60 });
  const stopped = new SessionTimer(() => expired.push(-2), never);
  stopped.refreshed(short);
  stopped.stop();
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(refreshed.status).toBe('running');
  expect(stopped.status).toBe('off');
  expect(expired).toEqual([0.15]);
  refreshed.stop();
  // callrec the refresher: asked to refresh (at 75 ms) before the interval runs out (at 100 ms).
  const order: string[] = [];
  const refresher = new SessionTimer(
    () => order.push('expired'),
    () => order.push('refresh'),
  );
  const over = new Promise((resolve) =>
    refresher.on('stateChange', (_, next) => next.status === 'expired' && resolve(0)),
  );
  refresher.refreshed({ ...short, refresher: 'uas' });
  await over;
  expect(order).toEqual(['refresh', 'expired']);
});

test('siprec_agent_aor: the whole AOR, case-insensitively, * matching any characters, nothing else special', () => {
  expect(matchesAor('sip:*@agents.example.com', 'sip:bob@agents.example.com')).toBe(true);
  expect(matchesAor('sip:*@agents.example.com', 'SIP:Bob@Agents.Example.com')).toBe(true);
  expect(matchesAor('sip:*@agents.example.com', 'sip:bob@agents.example.com.evil')).toBe(false);
  expect(matchesAor('sip:*@agents.example.com', 'sip:bob@agentsXexample.com')).toBe(false);
  expect(matchesAor('tel:+1555*', 'tel:+15551234567')).toBe(true);
  expect(matchesAor('sip:(a|b)+@x', 'sip:a@x')).toBe(false);
});
