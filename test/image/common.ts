// Shared by the gated image tests (`npm run test:image`, after `npm run image`): podman with this
// machine's settings, the image `npm run image` recorded in dist/image.json, and containers that
// are removed whatever happens (afterAll, and a synchronous last resort at process exit).
//
// These files are named *.gated.ts so that `bun test` (npm test) never collects them: they need
// a built image and take minutes. package.json's test:image lists them.
import { readImageRecord, type ImageRecord } from "../../src/image/build-image.ts";
import { imageExists, podman, podmanArgv, setupPodman, type Podman } from "../../src/image/podman.ts";
import { hostArch, REPO_ROOT } from "../../src/image/rootfs.ts";
import { join } from "node:path";

export interface ImageFixture {
  p: Podman;
  rec: ImageRecord;
}

/** Podman and the built image, or an error saying what to install or run first. */
export async function requireImage(): Promise<ImageFixture> {
  if (process.getuid?.() !== 0) throw new Error("the image tests need root (podman's store, network namespaces); run them as root, as CI does");
  const p = setupPodman(join(REPO_ROOT, "dist", "podman"));
  const rec = readImageRecord(hostArch());
  if (!(await imageExists(p, rec.image))) throw new Error(`${rec.image} (dist/image.json) is not in podman's store: run \`npm run image\` first`);
  return { p, rec };
}

/** Names of containers a test created; all are removed by removeAll() and at exit. */
export class Containers {
  readonly names = new Set<string>();
  private hooked = false;
  constructor(
    private readonly p: Podman,
    readonly prefix: string,
  ) {}

  name(suffix: string): string {
    const n = `${this.prefix}-${suffix}`;
    this.names.add(n);
    if (!this.hooked) {
      this.hooked = true;
      process.once("exit", () => {
        if (this.names.size) Bun.spawnSync(podmanArgv(this.p, ["rm", "-f", "-t", "0", ...this.names]), { env: this.p.env, stdout: "ignore", stderr: "ignore" });
      });
    }
    return n;
  }

  async remove(name: string): Promise<void> {
    await podman(this.p, ["rm", "-f", "-t", "2", name], { what: `removing container ${name}` });
    this.names.delete(name);
  }

  async removeAll(): Promise<void> {
    if (this.names.size === 0) return;
    await podman(this.p, ["rm", "-f", "-t", "2", ...this.names], { what: "removing the test's containers" });
    this.names.clear();
  }
}
