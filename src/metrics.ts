import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one media node, served at `GET /metrics`. */
export class MediaMetrics {
  readonly registry = new Registry();
  readonly callsActive = new Gauge({
    name: 'callrec_calls_active',
    help: 'Provider streams open on this node',
    registers: [this.registry],
  });
  readonly callsTotal = new Counter({
    name: 'callrec_calls_total',
    help: 'Provider streams ended, by outcome',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly sipRequestsTotal = new Counter({
    name: 'callrec_sip_requests_total',
    help: 'SIP requests answered finally (SIPREC), by method and status',
    labelNames: ['method', 'status'] as const,
    registers: [this.registry],
  });
  /** Recording sessions (SIPREC) on this node, from the INVITE taken to the session's end. */
  readonly sipSessionsActive = new Gauge({
    name: 'callrec_sip_sessions_active',
    help: 'SIPREC recording sessions live on this node',
    registers: [this.registry],
  });
  /** RTP sequence numbers a recording session never received (counted as its tracking window passes them, and at its end). */
  readonly rtpPacketsLostTotal = new Counter({
    name: 'callrec_rtp_packets_lost_total',
    help: 'RTP packets of SIPREC sessions never received (sequence gaps not filled)',
    registers: [this.registry],
  });
  /** RTP packets that arrived after the jitter window had written their place out: dropped, like a provider's late frame. */
  readonly rtpPacketsLateTotal = new Counter({
    name: 'callrec_rtp_packets_late_total',
    help: 'RTP packets of SIPREC sessions that arrived too late for the jitter window and were dropped',
    registers: [this.registry],
  });
  readonly framesTotal = new Counter({
    name: 'callrec_frames_total',
    help: 'Media frames received from providers',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  /** Time from a provider message's arrival to its frame being placed (and, in bridge mode, relayed). */
  readonly frameSeconds = new Histogram({
    name: 'callrec_frame_processing_seconds',
    help: 'Per-frame processing time on the media path (one message in 32 is timed)',
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
    registers: [this.registry],
  });

  /**
   * Where a stream's set-up time goes, once per call by phase: `start` (upgrade to the provider's
   * start message, the provider's own pace), `auth` (key and agent checked), `claim` (the node's
   * claim, the cluster's count when capped, the call row), `live` (consent gate, recorder, spool
   * and recording row begun, timers armed), `recording_row` (the recording row written, in the background).
   */
  readonly streamSetupSeconds = new Histogram({
    name: 'callrec_stream_setup_seconds',
    help: 'Stream set-up time per call, by phase (start, auth, claim, live, recording_row)',
    labelNames: ['phase'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly spoolSegmentsBehind = new Gauge({
    name: 'callrec_spool_segments_behind',
    help: 'Spool segments written to disk but not yet shipped to SPOOL_URL, over all calls',
    registers: [this.registry],
  });
  readonly spoolUploadRetries = new Counter({
    name: 'callrec_spool_upload_retries_total',
    help: 'Spool uploads to SPOOL_URL that failed and were retried',
    registers: [this.registry],
  });
  /** Set on each scrape: what the soak run watches to see memory per call stay flat. */
  readonly spoolPendingBytes = new Gauge({
    name: 'callrec_spool_pending_bytes',
    help: 'Bytes appended to call spools but not yet on disk, over all live calls',
    registers: [this.registry],
  });
  readonly spoolWriteErrors = new Counter({
    name: 'callrec_spool_write_errors_total',
    help: 'Spool writes that failed (a full or failing disk)',
    registers: [this.registry],
  });
  readonly spoolLostSeconds = new Counter({
    name: 'callrec_spool_lost_seconds_total',
    help: 'Seconds of call audio spools could not keep, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly spoolWritable = new Gauge({
    name: 'callrec_spool_writable',
    help: '1 while the spool disk takes writes; 0 while new streams are refused for it',
    registers: [this.registry],
  });
  readonly recordingsWaitingForRedis = new Gauge({
    name: 'callrec_recordings_waiting_for_redis',
    help: 'Finished recordings whose job could not be queued yet because Redis does not answer',
    registers: [this.registry],
  });

  /** Streams refused or ended by a limit of the media endpoints (README "Limits"), by the limit's error code. */
  readonly streamLimitsTotal = new Counter({
    name: 'callrec_stream_limit_total',
    help: 'Provider streams refused or ended by a media endpoint limit',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /** Bridge mode: a side's socket paused because the other side was not reading what it relayed (BRIDGE_RELAY_HIGH_WATER_BYTES). */
  readonly relayPausesTotal = new Counter({
    name: 'callrec_bridge_relay_pauses_total',
    help: 'Bridged sockets paused because the other side was not reading, by the side paused',
    labelNames: ['paused'] as const,
    registers: [this.registry],
  });
  /** What the media node's live calls hold for a side that does not read; set by the node (`relayBuffered`). */
  relayBuffered: () => { runtime: number; provider: number } = () => ({ runtime: 0, provider: 0 });
  /** Read on each scrape: bounded per call by BRIDGE_RELAY_MAX_BYTES each way. */
  readonly relayBufferedBytes: Gauge<'toward'> = new Gauge({
    name: 'callrec_bridge_relay_buffered_bytes',
    help: 'Bytes relayed but not yet written to the side that should read them, over all live calls, by that side',
    labelNames: ['toward'] as const,
    registers: [this.registry],
    collect: () => {
      const { runtime, provider } = this.relayBuffered();
      this.relayBufferedBytes.set({ toward: 'runtime' }, runtime);
      this.relayBufferedBytes.set({ toward: 'provider' }, provider);
    },
  });
  /** Frames dropped because their stream ran ahead of the wall clock (STREAM_AUDIO_LEAD_SECONDS). */
  readonly framesAheadTotal = new Counter({
    name: 'callrec_frames_ahead_of_wall_clock_total',
    help: 'Media frames dropped for running ahead of the wall clock',
    registers: [this.registry],
  });
  /** Recording jobs, counted as each finishes (`ready`, `skipped`: nothing to do, `retried`, `failed`: out of attempts). */
  readonly recordingJobs = new Counter({
    name: 'callrec_recording_jobs_total',
    help: 'Recording jobs finished, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly recordingJobSeconds = new Histogram({
    name: 'callrec_recording_job_seconds',
    help: 'Time a recording job ran (fetch spool, encode, encrypt, upload), by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  /** Seconds of audio finalized per second of job time: how far ahead of real time the encoder runs. */
  readonly encodeRealtimeFactor = new Histogram({
    name: 'callrec_encode_realtime_factor',
    help: 'Seconds of recording finalized per second of job time',
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers: [this.registry],
  });
  readonly consentOutcomes = new Counter({
    name: 'callrec_consent_outcomes_total',
    help: 'Consent gates settled, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  /** Set on each scrape: the node's own recordings queue (`queue="node"`) and the shared one. */
  readonly recordingQueueJobs = new Gauge({
    name: 'callrec_recording_queue_jobs',
    help: 'Recording jobs by queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
  });
  readonly recordingsByStatus = new Gauge({
    name: 'callrec_recordings',
    help: 'Recordings in the database by status (all tenants; refreshed at most every 30 s)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly spoolBytes = new Gauge({
    name: 'callrec_spool_bytes',
    help: "Bytes of call spools on this node's disk",
    registers: [this.registry],
  });
  /** A timestamp, as Prometheus convention has it: alert on `time() - callrec_node_heartbeat_timestamp_seconds`. */
  readonly heartbeatTimestamp = new Gauge({
    name: 'callrec_node_heartbeat_timestamp_seconds',
    help: "When this node's last heartbeat reached Redis, Unix time in seconds",
    registers: [this.registry],
  });
  readonly draining = new Gauge({
    name: 'callrec_draining',
    help: '1 while this node drains (SIGTERM): it takes no new streams',
    registers: [this.registry],
  });

  // Outages and shipped spools (issue 12): what failed against a bucket, what was retried, what a bucket holds.
  /** Recording job attempts that failed because a bucket did not answer: `storage` (the upload) or `spool` (reading a shipped spool). */
  readonly recordingBucketErrors = new Counter({
    name: 'callrec_recording_bucket_errors_total',
    help: 'Recording job attempts failed because a bucket did not answer, by bucket',
    labelNames: ['bucket'] as const,
    registers: [this.registry],
  });
  /** Recording jobs run again: by BullMQ's backoff after a failed attempt, or by the sweep once the bucket of an outage answers. */
  readonly recordingJobRetries = new Counter({
    name: 'callrec_recording_job_retries_total',
    help: 'Recording jobs retried, by what retried them',
    labelNames: ['by'] as const,
    registers: [this.registry],
  });
  readonly spoolBytesInStorage = new Gauge({
    name: 'callrec_spool_bytes_in_storage',
    help: 'Bytes of shipped spool segments in SPOOL_URL not yet finalized (cluster-wide, kept in Redis)',
    registers: [this.registry],
  });

  constructor() {
    // Unprefixed (`process_*`, `nodejs_*`): the names stock Node.js dashboards and alerts query.
    collectDefaultMetrics({ register: this.registry });
    // Series that exist from the start, so a rate over them is 0 rather than absent.
    for (const bucket of ['storage', 'spool']) this.recordingBucketErrors.inc({ bucket }, 0);
    for (const by of ['backoff', 'sweep']) this.recordingJobRetries.inc({ by }, 0);
  }
}
