// A model of what the kernel does with our planned changes, over ClientFacts. Pure. Used by tests
// ("apply the plan, plan again: nothing left to do"; configurations replayed in any order converge)
// and by anyone who wants to see a plan's outcome without root. It models only what the client
// roles use, and fails like the kernel does where that matters (adding what exists, deleting
// what does not).
import type { IpRoute } from "../net/ip-json.ts";
import type { ClientFacts } from "./facts.ts";
import { formatPrefix4, parsePrefix4, prefixContains } from "../net/ipv4.ts";
import type { Change, RouteSpec } from "./plan.ts";
import { routeDst } from "../net/ip-json.ts";

export class SimulationError extends Error {
  override name = "SimulationError";
}

function toIpRoute(r: RouteSpec): IpRoute {
  const dst = r.dst === "default" ? "default" : r.dst.endsWith("/32") ? r.dst.slice(0, -3) : r.dst;
  return {
    dst,
    ...(r.via ? { gateway: r.via } : {}),
    ...(r.dev ? { dev: r.dev } : {}),
    ...(r.proto !== undefined ? { protocol: String(r.proto) } : {}),
    ...(r.metric ? { metric: r.metric } : {}),
    flags: r.onlink ? ["onlink"] : [],
  };
}

const dstOf = (r: IpRoute) => (r.dst === "default" ? "default" : routeDst(r));

/** Route identity in the kernel: destination and metric (table and tos are always main/0 here). */
const sameKey = (a: IpRoute, dst: string, metric: number | undefined) => dstOf(a) === dst && (a.metric ?? 0) === (metric ?? 0);

function matchesDelete(r: IpRoute, spec: RouteSpec): boolean {
  if (!sameKey(r, spec.dst, spec.metric)) return false;
  if (spec.via && r.gateway !== spec.via) return false;
  if (spec.dev && r.dev !== spec.dev) return false;
  if (spec.proto !== undefined && /^\d+$/.test(String(spec.proto)) && r.protocol !== String(spec.proto)) return false;
  return true;
}

/** A copy of `facts` after the kernel applied `changes` in order; throws SimulationError where ip would fail. */
export function simulateChanges(facts: ClientFacts, changes: readonly Change[]): ClientFacts {
  const f: ClientFacts = structuredClone(facts);
  const table = (family: 4 | 6, dst: string) => (family === 4 ? f.routes4 : dst === "default" ? f.defaults6 : f.ours6);
  const dropRoutesVia = (dev: string, subnet?: string) => {
    const sub = subnet ? parsePrefix4(subnet) : undefined;
    f.routes4 = f.routes4.filter((r) => {
      if (r.dev !== dev) return true;
      if (!sub) return false;
      const p = parsePrefix4(dstOf(r));
      const gw = r.gateway ? parsePrefix4(r.gateway) : undefined;
      return !((p && prefixContains(sub, p) && r.protocol === "kernel") || (gw && prefixContains(sub, gw)));
    });
  };
  for (const c of changes) {
    switch (c.op) {
      case "route-add": {
        const t = table(c.route.family, c.route.dst);
        if (t.some((r) => sameKey(r, c.route.dst, c.route.metric))) throw new SimulationError(`route add ${c.route.dst}: File exists`);
        t.push(toIpRoute(c.route));
        break;
      }
      case "route-replace": {
        const t = table(c.route.family, c.route.dst);
        const i = t.findIndex((r) => sameKey(r, c.route.dst, c.route.metric));
        if (i >= 0) t.splice(i, 1, toIpRoute(c.route));
        else t.push(toIpRoute(c.route));
        break;
      }
      case "route-del": {
        const t = table(c.route.family, c.route.dst);
        const i = t.findIndex((r) => matchesDelete(r, c.route));
        if (i < 0) throw new SimulationError(`route del ${c.route.dst}: No such process`);
        t.splice(i, 1);
        break;
      }
      case "link-del":
        if (!f.vxlan) throw new SimulationError(`link del ${c.dev}: Cannot find device`);
        f.vxlan = undefined;
        dropRoutesVia(c.dev);
        break;
      case "vxlan-add":
        if (f.vxlan) throw new SimulationError(`link add ${c.vxlan.name}: File exists`);
        f.vxlan = { kind: "vxlan", mac: c.vxlan.mac, mtu: c.vxlan.mtu, up: true, vni: c.vxlan.vni, port: c.vxlan.port, dev: c.vxlan.dev, remote: c.vxlan.remote, learning: false, addresses: [] };
        break;
      case "vxlan-set-remote":
        if (!f.vxlan) throw new SimulationError(`link set ${c.dev}: Cannot find device`);
        f.vxlan.remote = c.remote;
        break;
      case "link-set":
        if (!f.vxlan) throw new SimulationError(`link set ${c.dev}: Cannot find device`);
        if (c.mtu !== undefined) f.vxlan.mtu = c.mtu;
        if (c.up) f.vxlan.up = true;
        break;
      case "addr-set": {
        if (!f.vxlan) throw new SimulationError(`addr replace dev ${c.dev}: Cannot find device`);
        const lft = c.lifetime === "forever" ? Infinity : c.lifetime;
        const a = f.vxlan.addresses.find((x) => x.local === c.local && x.prefixlen === c.prefixlen);
        if (a) {
          a.validLft = lft;
          a.preferredLft = lft;
        } else f.vxlan.addresses.push({ local: c.local, prefixlen: c.prefixlen, validLft: lft, preferredLft: lft });
        const net = parsePrefix4(`${c.local}/${c.prefixlen}`)!;
        const dst = formatPrefix4(net);
        if (!f.routes4.some((r) => dstOf(r) === dst && r.dev === c.dev))
          f.routes4.push({ dst, dev: c.dev, protocol: "kernel", scope: "link", prefsrc: c.local, flags: [] });
        break;
      }
      case "addr-del": {
        if (!f.vxlan) throw new SimulationError(`addr del dev ${c.dev}: Cannot find device`);
        const i = f.vxlan.addresses.findIndex((x) => x.local === c.local && x.prefixlen === c.prefixlen);
        if (i < 0) throw new SimulationError(`addr del ${c.local}/${c.prefixlen}: Cannot assign requested address`);
        f.vxlan.addresses.splice(i, 1);
        const subnet = formatPrefix4(parsePrefix4(`${c.local}/${c.prefixlen}`)!);
        // the last address of a subnet takes its connected route and the routes through it along
        if (!f.vxlan.addresses.some((x) => formatPrefix4(parsePrefix4(`${x.local}/${x.prefixlen}`)!) === subnet)) dropRoutesVia(c.dev, subnet);
        break;
      }
      case "neigh-flush":
      case "neigh-retrans":
        break;
    }
  }
  return f;
}
