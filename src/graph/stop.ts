/**
 * Graceful stop. SIGINT/SIGTERM (or any injected signal source) set a flag; the runner then
 * stops handing items to every node, lets in-flight work finish (the current train step
 * completes), asks the `Checkpointer` to write, and resolves with `stopped: true` and a resume
 * hint (`stopMessage`). A second signal calls `onForce` (the CLI exits 130 there).
 */
export interface SignalSource {
  on(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  off(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
}

export class StopController {
  private flag = false;
  private why = '';
  private readonly listeners = new Set<() => void>();

  get requested(): boolean { return this.flag; }
  get reason(): string { return this.why; }

  request(reason = 'requested'): void {
    if (this.flag) return;
    this.flag = true;
    this.why = reason;
    for (const l of [...this.listeners]) l();
  }
  onRequest(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Listens on `source` (default: the process) until the returned function is called. */
  listen(source: SignalSource = process, onForce?: (signal: string) => void): () => void {
    const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
      const handler = () => {
        if (this.flag) onForce?.(signal);
        else this.request(signal);
      };
      source.on(signal, handler);
      return [signal, handler] as const;
    });
    return () => { for (const [signal, handler] of handlers) source.off(signal, handler); };
  }
}

/**
 * What a graceful stop reports: where the checkpoint went and the command that resumes from it, as
 * the Checkpointer gives it (the graph runner itself has no resume option to offer).
 */
export function stopMessage(stop: { reason: string; step: number; checkpoint?: string; resumeCommand?: string }): string {
  const head = `stopped (${stop.reason}) after step ${stop.step}`;
  if (!stop.checkpoint) return `${head}; the Checkpointer saved nothing, so the run cannot be resumed. Bind one that writes checkpoints (docs/plugins.md) to make runs resumable.`;
  return stop.resumeCommand
    ? `${head}; checkpoint written to ${stop.checkpoint}. Resume with: ${stop.resumeCommand}`
    : `${head}; checkpoint written to ${stop.checkpoint} (the Checkpointer names no command to resume from it).`;
}
