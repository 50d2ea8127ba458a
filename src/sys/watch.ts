// Watching one file for changes, including the two ways /etc/resolv.conf changes in a pod:
// rewritten in place (a bind-mounted file cannot be renamed over) and replaced by rename
// (ordinary files, ConfigMap `..data` swaps). See PLATFORM.md "Watching /etc/resolv.conf":
// fs.watch(file) sees in-place writes at once but goes deaf after a rename-over; fs.watchFile
// (stat polling) catches every case within its interval. We use both, and re-arm fs.watch
// when polling sees a new inode.
import { closeSync, fsyncSync, openSync, renameSync, unwatchFile, watch, watchFile as pollFile, writeSync, type FSWatcher, type Stats } from "node:fs";
import { dirname, basename, join } from "node:path";

export interface FileWatcher {
  close(): void;
}

export interface WatchOptions {
  /** Stat polling interval (the fallback's latency bound). Default 250 ms. */
  pollMs?: number;
  /** Coalesce bursts (truncate + write) into one callback. Default 30 ms. */
  debounceMs?: number;
}

export function watchFile(path: string, onChange: () => void, opts: WatchOptions = {}): FileWatcher {
  const pollMs = opts.pollMs ?? 250;
  const debounceMs = opts.debounceMs ?? 30;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const fire = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, debounceMs);
  };

  let fsw: FSWatcher | undefined;
  const arm = () => {
    fsw?.close();
    fsw = undefined;
    try {
      fsw = watch(path, { persistent: false }, fire);
      fsw.on("error", () => {
        fsw?.close();
        fsw = undefined;
      });
    } catch {
      // missing right now: polling notices when it appears and re-arms
    }
  };
  arm();

  const onStat = (cur: Stats, prev: Stats) => {
    if (cur.ino !== prev.ino) arm(); // replaced by rename (or created): the old inotify watch is deaf
    if (cur.ino !== prev.ino || cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) fire();
  };
  pollFile(path, { interval: pollMs, persistent: true }, onStat);

  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      fsw?.close();
      unwatchFile(path, onStat);
    },
  };
}

/**
 * Replace a file's content atomically (write a temporary file next to it, then rename), so a
 * reader (dnsmasq re-reading its resolv-file on inotify) never sees a half-written file.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
