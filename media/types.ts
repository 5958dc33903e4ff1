/** Wire codecs callrec accepts on a media stream. */
export type Codec = 'pcmu' | 'pcma' | 'l16';

/** Sample rates callrec accepts on a media stream. */
export type SampleRate = 8000 | 16000;

/** How one leg's audio arrives on the wire. L16 byte order differs by provider (Telnyx BE, Vonage LE). */
export interface MediaFormat {
  codec: Codec;
  sampleRate: SampleRate;
  /** Only meaningful for `l16`. */
  byteOrder?: 'be' | 'le';
}

/** The two sides of a call. Caller = what the provider sent us from the PSTN side; agent = the voice agent. */
export type Leg = 'caller' | 'agent';

/** Output container/codec of a finished recording. */
export type RecordingFormat = 'mp3' | 'wav' | 'ogg';

/** Counters a leg buffer keeps about the timing of what it was given. */
export interface LegStats {
  /** Frames written in order or within the jitter window out of order. */
  framesPlaced: number;
  /** Frames that arrived after a later frame but were still placed (reordered within the window). */
  framesLate: number;
  /** Frames whose samples were all already written (exact duplicates). */
  framesDuplicate: number;
  /** Frames that arrived after their position had already been flushed. */
  framesDropped: number;
  /** Samples of silence written for positions no frame covered. */
  gapSamples: number;
}

/** Interleaved 16-bit PCM read once, in order. Each array must stay untouched until the next one is requested. */
export interface PcmStream {
  sampleRate: number;
  channels: 1 | 2;
  chunks: AsyncIterable<Int16Array>;
}

/** Interleaved 16-bit PCM of known length that can be read from any frame (a spool): lets MP3 encode in parallel. */
export interface PcmFile {
  sampleRate: number;
  channels: 1 | 2;
  /** Length in sample frames. */
  frames: number;
  /** Sample frames [start, end), in order, in arrays as {@link PcmStream.chunks}. */
  read(start: number, end: number): AsyncIterable<Int16Array>;
}

/** PCM to encode. */
export type PcmSource = PcmStream | PcmFile;

/** Bytes to write at `position` in the output file. Later chunks may overwrite earlier bytes (header patches). */
export interface EncodedChunk {
  position: number;
  data: Uint8Array;
}
