// The progress line of stage-image: on a terminal only, redrawn a few
// times a second from a counter the stream updates, so it costs the
// stream nothing.
import { humanBytes } from "../base/format.ts";

export class Progress {
  readonly meter = { bytes: 0 };
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly enabled: boolean,
  ) {}

  start(): void {
    if (!this.enabled) return;
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  private draw(): void {
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? this.meter.bytes / secs : 0;
    let line = `staging ${this.label}: ${humanBytes(this.meter.bytes)}`;
    if (this.total) {
      const pct = Math.min(100, Math.floor((100 * this.meter.bytes) / this.total));
      line += ` of ${humanBytes(this.total)} (${pct}%)`;
    }
    line += `  ${humanBytes(Math.round(rate))}/s`;
    if (this.total && rate > 0) {
      const eta = Math.max(0, Math.round((this.total - this.meter.bytes) / rate));
      line += `  ETA ${eta}s`;
    }
    process.stderr.write(`\r\x1b[K${line}`);
    this.drawn = true;
  }

  /** Clears the line; with a summary, prints the final size and time instead. */
  stop(summary?: (secs: number) => string): void {
    clearInterval(this.timer);
    if (!this.enabled) return;
    if (this.drawn) process.stderr.write("\r\x1b[K");
    if (summary) process.stderr.write(`${summary((Date.now() - this.started) / 1000)}\n`);
  }
}
