/**
 * Manifest folders for kproxy processes under test: one `objects.json` (a `kind: List`), replaced
 * atomically (write a temporary file, then rename) so kproxy never reads half a file.
 *
 * @module
 */
import { endpointSlice, local, POD_CIDRS, service, THIS_NODE, thisNode } from "../netns/mod.ts";

/** The ClusterIP of the `web` service. */
export const CLUSTER_IP = "198.18.128.10";
/** A user's own table and rule, which kproxy must never touch. */
export const USER_TABLE = "table inet user {\n\tchain input {\n\t\ttype filter hook input " +
  "priority 10; policy accept;\n\t\ttcp dport 2222 accept\n\t}\n}\n";

/** A manifest folder that tests rewrite. */
export interface ManifestDir {
  /** The folder (pass as `--manifests`). */
  readonly path: string;
  /** Replaces the folder's objects. */
  write(objects: readonly unknown[]): Promise<void>;
  /** Removes the folder. */
  remove(): Promise<void>;
}

/** Makes a temporary manifest folder holding `objects`. */
export async function manifestDir(objects: readonly unknown[]): Promise<ManifestDir> {
  const path = await Deno.makeTempDir({ prefix: "kproxy-reliability-" });
  let n = 0;
  const write = async (next: readonly unknown[]) => {
    const text = JSON.stringify({ apiVersion: "v1", kind: "List", items: next }, null, 1);
    // The temporary name ends in .tmp, which the loader does not read.
    const tmp = `${path}/.objects-${n++}.tmp`;
    await Deno.writeTextFile(tmp, text + "\n");
    await Deno.rename(tmp, `${path}/objects.json`);
  };
  await write(objects);
  return {
    path,
    write,
    remove: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** The objects: this node, and one service with two local endpoints. */
export function webObjects(endpoints: readonly number[] = [0, 1]): unknown[] {
  return [
    thisNode(),
    service("web", { clusterIPs: [CLUSTER_IP], ports: [{ name: "http", port: 80 }] }),
    endpointSlice("web", {
      ports: [{ name: "http", port: 8080 }],
      endpoints: endpoints.map((i) => local(i)),
    }),
  ];
}

/** kproxy's command line for a topology's node. */
export function kproxyArgs(
  dir: string,
  mode: "nftables" | "iptables",
  extra: readonly string[] = [],
): string[] {
  return [
    "--manifests",
    dir,
    "--proxy-mode",
    mode,
    "--hostname-override",
    THIS_NODE,
    "--cluster-cidr",
    POD_CIDRS.join(","),
    "--healthz-bind-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "127.0.0.1:0",
    ...extra,
  ];
}
