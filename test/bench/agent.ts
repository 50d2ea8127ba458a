// The bench's helper inside a lab namespace (run with Bun: `ip netns exec <ns> bun agent.ts ...`).
//   udp-poll <ip> <port> <everyMs>   forever: every everyMs a datagram from a fresh socket (so a
//                                    reply belongs to exactly that probe); prints
//                                    "ok <sentEpochMs> <recvEpochMs>" for each reply
//   dns-wait <ip> <timeoutMs>        DNS queries to ip:53 every 5 ms until one is answered; prints
//                                    "ready <epochMs>", exit 0 (exit 1 after timeoutMs)
//   http-get <url>                   one GET (2 s deadline); prints the body, exit 0 on 200
// Times are epoch milliseconds (performance.timeOrigin + now): the bench compares them with its own.
import { createSocket } from "node:dgram";
import { probeDns } from "../../src/sys/probe.ts";

const now = () => performance.timeOrigin + performance.now();

function probeUdp(ip: string, port: number, waitMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = createSocket("udp4");
    let done = false;
    const finish = (v: number | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {}
      resolve(v);
    };
    const timer = setTimeout(() => finish(undefined), waitMs);
    sock.on("error", () => finish(undefined)); // no route yet, ICMP errors: not an answer
    sock.on("message", () => finish(now()));
    sock.send("bench", port, ip, (e) => {
      if (e) finish(undefined);
    });
  });
}

async function udpPoll(ip: string, port: number, everyMs: number): Promise<never> {
  for (;;) {
    const sent = now();
    const got = await probeUdp(ip, port, everyMs);
    if (got !== undefined) process.stdout.write(`ok ${sent.toFixed(1)} ${got.toFixed(1)}\n`);
    const left = sent + everyMs - now();
    if (left > 0) await Bun.sleep(left);
  }
}

async function dnsWait(ip: string, timeoutMs: number): Promise<number> {
  const end = now() + timeoutMs;
  while (now() < end) {
    const r = await probeDns(ip, { timeoutMs: 50 });
    if (r.alive) {
      process.stdout.write(`ready ${now().toFixed(1)}\n`);
      return 0;
    }
    await Bun.sleep(5);
  }
  process.stderr.write(`no DNS answer from ${ip}:53 within ${timeoutMs} ms\n`);
  return 1;
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "udp-poll") await udpPoll(rest[0]!, Number(rest[1]), Number(rest[2] ?? 20));
else if (mode === "dns-wait") process.exit(await dnsWait(rest[0]!, Number(rest[1] ?? 10000)));
else if (mode === "http-get") {
  const r = await fetch(rest[0]!, { signal: AbortSignal.timeout(2000) });
  process.stdout.write(await r.text());
  process.exit(r.status === 200 ? 0 : 1);
} else {
  process.stderr.write(`usage: agent.ts udp-poll <ip> <port> <everyMs> | dns-wait <ip> <timeoutMs> | http-get <url>\n`);
  process.exit(2);
}
