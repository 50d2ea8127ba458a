// sys/hostname.ts reads /proc instead of loading node:os: it must say what os.hostname() says,
// also in another UTS namespace (the pod's), when the test may create one.
import { expect, test } from "bun:test";
import { hostname as osHostname } from "node:os";
import { hostname } from "../../src/sys/hostname.ts";

test("the same name as os.hostname()", () => {
  expect(hostname()).toBe(osHostname());
});

test("in a UTS namespace of its own, the name set there (as Kubernetes sets the pod's)", () => {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (unshare --uts): run the unit tests as root, as CI does");
  const script = `import { hostname } from ${JSON.stringify(import.meta.dir + "/../../src/sys/hostname.ts")}; console.log(hostname());`;
  const r = Bun.spawnSync(["unshare", "--uts", "sh", "-c", `hostname client-7-abcde && exec "$0" -e "$1"`, process.execPath, script]);
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString().trim()).toBe("client-7-abcde");
});
