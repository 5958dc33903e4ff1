import { useEffect, useRef, useState } from 'preact/hooks';
import WaveSurfer from 'wavesurfer.js';
import RegionsPlugin from 'wavesurfer.js/dist/plugins/regions.esm.js';
import { api, ApiError, playbackUrl, type CallView, type Peaks } from '../api.js';
import { formatDuration } from '../format.js';
import { ErrorMessage } from './Notice.js';

const LANE_HEIGHT = 72;
const LANE_LABELS: Record<string, string> = { caller: 'Caller', agent: 'Agent', mix: 'Mix' };

interface Span {
  label: string;
  startS: number;
  endS: number;
}

/**
 * Where the consent prompt and the pauses sit in the recording, in seconds. Pauses carry their
 * place in the file. The prompt is on the call's clock, and capture starts once it has played:
 * shifted by the first pause's clock-to-file offset (or taking the file to begin where the prompt
 * ended), a prompt wholly before the file is a marker at its start.
 */
export function timelineSpans(call: CallView): Span[] {
  const spans: Span[] = [];
  const pauses = call.pauses as Array<{
    paused_at_ms: number;
    resumed_at_ms: number | null;
    behavior: string;
    recording_offset_ms: number;
  }>;
  const promptEnd = call.consent?.prompt_ended_ms;
  const promptStart = call.consent?.prompt_started_ms;
  if (typeof promptStart === 'number' && typeof promptEnd === 'number') {
    const fileStartOnClock = pauses[0] ? pauses[0].paused_at_ms - pauses[0].recording_offset_ms : promptEnd;
    const at = (ms: number) => Math.max(0, ms - fileStartOnClock) / 1000;
    const [startS, endS] = [at(promptStart), at(promptEnd)];
    spans.push({ label: endS > startS ? 'Consent prompt' : 'Consent prompt (before recording)', startS, endS });
  }
  for (const pause of pauses) {
    const lengthMs =
      pause.behavior === 'silence' && pause.resumed_at_ms !== null ? pause.resumed_at_ms - pause.paused_at_ms : 0;
    spans.push({
      label: 'Paused',
      startS: pause.recording_offset_ms / 1000,
      endS: (pause.recording_offset_ms + lengthMs) / 1000,
    });
  }
  return spans;
}

/**
 * The recording's player: an `<audio>` element of the page streaming a short-lived playback URL
 * (Range requests, so long recordings start at once), with a waveform drawn from the server's
 * peaks; clicking the waveform seeks the same element.
 */
export function Player({ call }: { call: CallView }) {
  const audio = useRef<HTMLAudioElement>(null);
  const waveform = useRef<HTMLDivElement>(null);
  const [playing, setPlaying] = useState(false);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState((call.recording?.duration_ms ?? 0) / 1000);
  const [lanes, setLanes] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const format = call.recording!.format;
  // One fresh URL per failure of a URL that had worked: a recording the browser cannot play is not retried forever.
  const retryAllowed = useRef(false);

  // The playback URL expires after minutes: mint one now, and a fresh one if the element fails later.
  const load = async (resumeAt = 0) => {
    try {
      const { url } = await playbackUrl(call.id, format);
      const element = audio.current!;
      element.src = url;
      if (resumeAt > 0) element.currentTime = resumeAt;
    } catch (err) {
      setError(`The recording cannot be played: ${(err as Error).message}`);
    }
  };

  useEffect(() => {
    void load();
    let surfer: WaveSurfer | null = null;
    let stopped = false;
    api<Peaks>('GET', `/api/calls/${encodeURIComponent(call.id)}/recording/peaks`).then(
      (peaks) => {
        if (stopped) return;
        const regions = RegionsPlugin.create();
        surfer = WaveSurfer.create({
          container: waveform.current!,
          media: audio.current!,
          peaks: peaks.peaks,
          duration: peaks.duration,
          height: LANE_HEIGHT,
          normalize: false,
          waveColor: '#4b6584',
          progressColor: '#1e3a5f',
          cursorColor: '#c0392b',
          splitChannels: peaks.peaks.map(() => ({ height: LANE_HEIGHT })),
          plugins: [regions],
        });
        setLanes(peaks.channels);
        // Once the peaks are loaded: a region added while the duration is still 0 is clamped to 0.
        surfer.once('decode', () => {
          for (const span of timelineSpans(call)) {
            regions.addRegion({
              start: span.startS,
              end: span.endS,
              content: span.label,
              color: 'rgba(241, 196, 15, 0.3)',
              drag: false,
              resize: false,
            });
          }
        });
      },
      (err: unknown) => {
        if (!stopped)
          setError(
            err instanceof ApiError && err.status === 404
              ? 'No waveform was stored for this recording.'
              : `The waveform cannot be shown: ${(err as Error).message}`,
          );
      },
    );
    return () => {
      stopped = true;
      surfer?.destroy();
    };
  }, [call.id, call.recording?.id]);

  const toggle = () => {
    const element = audio.current!;
    if (element.paused) element.play().catch((err: Error) => setError(`Playback failed: ${err.message}`));
    else element.pause();
  };

  return (
    <section class="player" aria-label="Recording">
      {/* biome-ignore lint/a11y/useMediaCaption: a call recording has no captions track to offer. */}
      <audio
        ref={audio}
        preload="metadata"
        onPlay={() => setPlaying(true)}
        onPause={() => setPlaying(false)}
        onTimeUpdate={(e) => setTime(e.currentTarget.currentTime)}
        onDurationChange={(e) => Number.isFinite(e.currentTarget.duration) && setDuration(e.currentTarget.duration)}
        onLoadedMetadata={() => (retryAllowed.current = true)}
        onError={() => {
          if (!retryAllowed.current) return setError('The browser could not play this recording.');
          retryAllowed.current = false;
          void load(audio.current?.currentTime ?? 0);
        }}
      />
      <div class="transport">
        <button type="button" class="play" onClick={toggle}>
          {playing ? 'Pause' : 'Play'}
        </button>
        <label for="position">Position</label>
        <input
          id="position"
          type="range"
          min={0}
          max={duration || 0}
          step={0.1}
          value={time}
          onInput={(e) => (audio.current!.currentTime = Number(e.currentTarget.value))}
        />
        <span class="time">
          {formatDuration(time * 1000)} / {formatDuration(duration * 1000)}
        </span>
      </div>
      <div class="waveform">
        <div class="lanes" aria-hidden={lanes.length === 0}>
          {lanes.map((lane) => (
            <span class="lane" style={{ height: `${LANE_HEIGHT}px` }}>
              {LANE_LABELS[lane] ?? lane}
            </span>
          ))}
        </div>
        <div class="surface" ref={waveform} />
      </div>
      <ErrorMessage error={error} />
    </section>
  );
}
