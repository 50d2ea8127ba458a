// The host-safety decision: which facts let a role change network state, and the refusal's wording.
import { describe, expect, test } from "bun:test";
import { decideHostSafety, type HostFacts } from "../../src/core/host-safety.ts";

const host: HostFacts = {
  selfNetNs: "net:[4026531840]",
  pid1NetNs: "net:[4026531840]",
  kubernetesServiceHost: undefined,
  dockerEnv: false,
  containerEnv: false,
};

describe("decideHostSafety", () => {
  test("refuses on the host's own network namespace with no container signs", () => {
    const v = decideHostSafety(host, false);
    expect(v.ok).toBe(false);
    expect(v.why).toContain("--allow-host-network");
    expect(v.why).toContain("PID 1's network namespace");
  });
  test("refuses when PID 1's namespace cannot be read (separation unproven)", () => {
    expect(decideHostSafety({ ...host, pid1NetNs: undefined }, false).ok).toBe(false);
  });
  test("allows a separate network namespace", () => {
    expect(decideHostSafety({ ...host, selfNetNs: "net:[4026532999]" }, false).ok).toBe(true);
  });
  test.each([
    ["KUBERNETES_SERVICE_HOST", { kubernetesServiceHost: "10.96.0.1" }],
    ["/.dockerenv", { dockerEnv: true }],
    ["/run/.containerenv", { containerEnv: true }],
  ])("allows a container sign: %s", (_n, extra) => {
    const v = decideHostSafety({ ...host, ...extra }, false);
    expect(v.ok).toBe(true);
  });
  test("--allow-host-network overrides", () => {
    expect(decideHostSafety(host, true)).toEqual({ ok: true, why: "--allow-host-network given" });
  });
});
