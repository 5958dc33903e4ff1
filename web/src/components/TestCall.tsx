import { useEffect, useRef, useState } from 'preact/hooks';
import type { TelnyxRTC } from '@telnyx/webrtc';
import { api, can, type Me } from '../api.js';

interface TestCallToken {
  login_token: string;
  destination: string;
}

/**
 * "Test call": dials the operator's Telnyx test number from this browser with `@telnyx/webrtc`,
 * logged in with a short-lived token the server mints; the number streams to this server, so the
 * call then shows in Call Logs. Every failure is said in plain words.
 */
export function TestCall({ me }: { me: Me }) {
  const client = useRef<TelnyxRTC | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  const [active, setActive] = useState(false);

  const fail = (message: string) => {
    setFailed(true);
    setStatus(`Test call failed: ${message}`);
    setActive(false);
    void client.current?.disconnect();
    client.current = null;
  };

  const start = async () => {
    setFailed(false);
    setActive(true);
    setStatus('Getting a login token…');
    let token: TestCallToken;
    try {
      token = await api<TestCallToken>('POST', '/api/test-call/token');
    } catch (err) {
      return fail((err as Error).message);
    }
    setStatus('Connecting to Telnyx…');
    try {
      // Loaded on demand: most visits never place a test call.
      const { TelnyxRTC } = await import('@telnyx/webrtc');
      const rtc = new TelnyxRTC({ login_token: token.login_token });
      client.current = rtc;
      rtc.on('telnyx.ready', () => {
        setStatus(`Calling ${token.destination}…`);
        rtc.newCall({ destinationNumber: token.destination, audio: true, video: false });
      });
      rtc.on('telnyx.error', (event: { error?: { message?: string }; message?: string }) =>
        fail(event.error?.message ?? event.message ?? 'Telnyx reported an error.'),
      );
      rtc.on('telnyx.socket.error', () => fail('the connection to Telnyx could not be opened.'));
      rtc.on('telnyx.socket.close', () => client.current === rtc && fail('the connection to Telnyx closed.'));
      rtc.on('telnyx.notification', (notification: { type: string; call?: { state: string } }) => {
        if (notification.type !== 'callUpdate' || !notification.call) return;
        const state = notification.call.state;
        if (state === 'hangup' || state === 'destroy') {
          // Ended as calls end: the socket closing next is no failure.
          client.current = null;
          void rtc.disconnect();
          setStatus('Test call ended. It is listed in Call Logs.');
          setActive(false);
        } else setStatus(`Test call: ${state}`);
      });
      await rtc.connect();
    } catch (err) {
      fail((err as Error).message);
    }
  };

  const hangUp = () => {
    const rtc = client.current;
    client.current = null;
    void rtc?.disconnect();
    setActive(false);
    setStatus('Test call ended.');
  };

  useEffect(() => () => void client.current?.disconnect(), []);

  if (!can(me, 'admin')) return null;
  return (
    <div class="test-call">
      {active ? (
        <button type="button" onClick={hangUp}>
          Hang up
        </button>
      ) : (
        <button type="button" onClick={start}>
          Test call
        </button>
      )}
      {status && (
        <span class={failed ? 'error' : 'status'} role={failed ? 'alert' : 'status'}>
          {status}
        </span>
      )}
    </div>
  );
}
