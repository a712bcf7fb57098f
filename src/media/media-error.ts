/**
 * The one error type of the media stages: `{ path, stage, message }` plus a machine-readable
 * `kind`, so an ingest report and the pipeline's error channel can say what went wrong with a clip
 * without parsing text. The message always names the file and the cause.
 */

export type MediaErrorKind =
  | 'missing' // no such file
  | 'empty' // zero bytes
  | 'not-media' // ffmpeg cannot recognise the container
  | 'corrupt' // truncated or damaged data, ffmpeg failed mid-way
  | 'no-audio'
  | 'no-video'
  | 'silent' // mean |x| over the decoded audio is exactly 0 (spec §1.2)
  | 'too-short' // no video frame or not one whole 25 ms audio frame
  | 'ffmpeg'; // ffmpeg could not be started or failed for another reason

export class MediaError extends Error {
  override readonly name = 'MediaError';
  constructor(
    readonly path: string,
    readonly stage: string,
    readonly kind: MediaErrorKind,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
  }

  /** The `{path, stage, message}` record written to reports and the error channel. */
  toRecord(): { path: string; stage: string; kind: MediaErrorKind; message: string } {
    return { path: this.path, stage: this.stage, kind: this.kind, message: this.message };
  }
}

export function isAbortError(e: unknown): boolean {
  return (e as { name?: string })?.name === 'AbortError';
}

/** A plain `Error` named 'AbortError' (the signal's reason kept as `cause`). */
export function abortError(signal?: AbortSignal): Error {
  const reason = signal?.reason;
  const e = new Error(reason instanceof Error && reason.message ? reason.message : 'the operation was aborted', { cause: reason });
  e.name = 'AbortError';
  return e;
}
