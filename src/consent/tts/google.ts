import type { TextToSpeechClient } from '@google-cloud/text-to-speech';
import { CallrecError } from '../../errors.js';
import type { TtsEngine } from './types.js';
import { readPcm16Wav } from './wav.js';

type ClientOptions = NonNullable<ConstructorParameters<typeof TextToSpeechClient>[0]>;

/** Options for {@link GoogleTtsEngine}. */
export interface GoogleTtsOptions {
  /** A Cloud Text-to-Speech voice name; its first two parts are its language code. Default `en-US-Standard-C`. */
  voice?: string;
  /** Upper bound on one synthesis, retries included: a caller is waiting on the line. Default 10 s. */
  timeoutMs?: number;
  /**
   * Passed to `TextToSpeechClient`: credentials (`apiKey`, `keyFilename`, … — by default
   * Application Default Credentials), or a different endpoint and transport.
   */
  client?: ClientOptions;
}

/** `TTS_ENGINE=google`: Cloud Text-to-Speech, asked for LINEAR16 at the stream's rate. */
export class GoogleTtsEngine implements TtsEngine {
  readonly name = 'google';
  readonly voice: string;
  readonly #languageCode: string;
  readonly #timeoutMs: number;
  /** The client library (google-gax, gRPC, protobufs: tens of MB) loads here, so only a node that uses it pays for it. */
  readonly #client: Promise<TextToSpeechClient>;

  constructor(options: GoogleTtsOptions = {}) {
    this.voice = options.voice ?? 'en-US-Standard-C';
    const parts = this.voice.split('-');
    if (parts.length < 3)
      throw new CallrecError(
        'ERR_CONFIG',
        `GOOGLE_TTS_VOICE: expected a voice name like en-US-Standard-C, got "${this.voice}"`,
      );
    this.#languageCode = `${parts[0]}-${parts[1]}`;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#client = import('@google-cloud/text-to-speech').then(
      ({ TextToSpeechClient }) => new TextToSpeechClient(options.client),
    );
    this.#client.catch(() => {}); // reported by the first synthesis
  }

  async synthesize(text: string, sampleRate: 8000 | 16000): Promise<{ pcm: Int16Array; sampleRate: number }> {
    let audio: Uint8Array | string | null | undefined;
    try {
      const [response] = await (await this.#client).synthesizeSpeech(
        {
          input: { text },
          voice: { languageCode: this.#languageCode, name: this.voice },
          audioConfig: { audioEncoding: 'LINEAR16', sampleRateHertz: sampleRate },
        },
        { timeout: this.#timeoutMs },
      );
      audio = response.audioContent;
    } catch (err) {
      throw new CallrecError('ERR_TTS', `Google Text-to-Speech failed: ${(err as Error).message}`, { cause: err });
    }
    if (!audio || audio.length === 0) throw new CallrecError('ERR_TTS', 'Google Text-to-Speech returned no audio');
    // LINEAR16 comes back as a whole WAV file (header included); JSON transports may leave it base64.
    return readPcm16Wav(typeof audio === 'string' ? Buffer.from(audio, 'base64') : audio, 'Google Text-to-Speech');
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    await (await this.#client).close();
  }
}
