// What each API outcome leads to, the backoff schedule, and fetch error classification.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  backoffDelay,
  decideOnFailure,
  describeFailure,
  failureFromFetchError,
  forbiddenMessage,
  KubeApiError,
  type ApiFailure,
} from "../../src/core/kube/failure.ts";

const http = (code: number): ApiFailure => ({ kind: "http", code });

describe("decideOnFailure", () => {
  test("GET: 401/403 stop asking; everything else is retried", () => {
    expect(decideOnFailure("get", http(401))).toBe("forbidden");
    expect(decideOnFailure("get", http(403))).toBe("forbidden");
    for (const f of [http(404), http(500), http(503), http(429), { kind: "timeout", afterMs: 10 }, { kind: "tls", detail: "x" }, { kind: "network", detail: "ECONNREFUSED" }, { kind: "bad-response", detail: "x" }, { kind: "token", detail: "ENOENT" }] as ApiFailure[]) {
      expect(decideOnFailure("get", f)).toBe("retry");
    }
  });

  test("watch: 410 relists, 403/405/501 poll, 401/404 and other ERROR events restart with a GET, the rest retry", () => {
    expect(decideOnFailure("watch", { kind: "watch-error", status: { kind: "Status", code: 410, reason: "Expired" } })).toBe("relist");
    expect(decideOnFailure("watch", http(410))).toBe("relist");
    expect(decideOnFailure("watch", http(403))).toBe("poll");
    expect(decideOnFailure("watch", http(405))).toBe("poll");
    expect(decideOnFailure("watch", http(501))).toBe("poll");
    expect(decideOnFailure("watch", http(401))).toBe("restart");
    expect(decideOnFailure("watch", http(404))).toBe("restart");
    expect(decideOnFailure("watch", { kind: "watch-error", status: { kind: "Status", code: 500 } })).toBe("restart");
    expect(decideOnFailure("watch", http(500))).toBe("retry");
    expect(decideOnFailure("watch", { kind: "timeout", afterMs: 1 })).toBe("retry");
    expect(decideOnFailure("watch", { kind: "bad-response", detail: "x" })).toBe("retry");
  });
});

describe("backoffDelay", () => {
  test("doubles from 500 ms and caps at 30 s (no jitter at random = 1)", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelay(n))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
  test("jitter spreads over [50 %, 100 %]", () => {
    expect(backoffDelay(3, undefined, 0)).toBe(1000);
    expect(backoffDelay(3, undefined, 0.5)).toBe(1500);
  });
  test("property: never above the cap, never below half the first delay, monotonic without jitter", () => {
    const policy = { initialMs: 100, maxMs: 5000, factor: 2 };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r) => {
        const d = backoffDelay(n, policy, r);
        expect(d).toBeLessThanOrEqual(5000);
        expect(d).toBeGreaterThanOrEqual(50);
        expect(backoffDelay(n + 1, policy)).toBeGreaterThanOrEqual(backoffDelay(n, policy));
      }),
    );
  });
});

describe("failureFromFetchError (shapes Bun's fetch throws)", () => {
  test("TLS verification", () => {
    expect(failureFromFetchError({ name: "TypeError", code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", message: "unable to verify the first certificate" }, 1)).toEqual({ kind: "tls", detail: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    expect(failureFromFetchError({ name: "TypeError", code: "ERR_TLS_CERT_ALTNAME_INVALID", message: "x" }, 1).kind).toBe("tls");
    expect(failureFromFetchError({ name: "TypeError", code: "SELF_SIGNED_CERT_IN_CHAIN", message: "x" }, 1).kind).toBe("tls");
  });
  test("timeouts and network errors", () => {
    expect(failureFromFetchError({ name: "TimeoutError", code: 23, message: "The operation timed out." }, 250)).toEqual({ kind: "timeout", afterMs: 250 });
    expect(failureFromFetchError({ name: "TypeError", code: "ECONNREFUSED", message: "ECONNREFUSED: Unable to connect." }, 1)).toEqual({ kind: "network", detail: "ECONNREFUSED: Unable to connect." });
  });
});

describe("messages", () => {
  test("the forbidden warning names the Role, its verbs and the manifest", () => {
    const m = forbiddenMessage("media", "job-x", { kind: "http", code: 403, status: { kind: "Status", reason: "Forbidden", message: 'pods "job-x" is forbidden: User "system:serviceaccount:media:default" cannot get resource "pods"' } });
    expect(m).toContain("pod media/job-x");
    expect(m).toContain("HTTP 403 Forbidden");
    expect(m).toContain("system:serviceaccount:media:default");
    expect(m).toContain("Role with verbs get and watch on pods");
    expect(m).toContain("config/kubernetes/rbac.yaml");
  });
  test("describeFailure says what happened", () => {
    expect(describeFailure({ kind: "timeout", afterMs: 10000 })).toBe("no answer within 10000 ms");
    expect(describeFailure({ kind: "watch-error", status: { kind: "Status", code: 410, reason: "Expired", message: "too old" } })).toBe("watch ERROR event 410 Expired: too old");
  });
  test("KubeApiError maps refusals to exit 4 and other failures to 5", () => {
    expect(new KubeApiError("getting pod a/b", http(403)).exitCode).toBe(4);
    expect(new KubeApiError("getting pod a/b", http(401)).exitCode).toBe(4);
    expect(new KubeApiError("getting pod a/b", http(500)).exitCode).toBe(5);
    expect(new KubeApiError("getting pod a/b", { kind: "tls", detail: "X" }).message).toBe("getting pod a/b: TLS verification failed (X)");
  });
});
