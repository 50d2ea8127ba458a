// The version compiled into the binary by build.ts (--define); "dev" when run from source.
declare const POD_GATEWAY_VERSION: string | undefined;
declare const POD_GATEWAY_COMMIT: string | undefined;

export const version: string = typeof POD_GATEWAY_VERSION === "string" ? POD_GATEWAY_VERSION : "0.0.0-dev";
export const commit: string = typeof POD_GATEWAY_COMMIT === "string" ? POD_GATEWAY_COMMIT : "";
export const versionString = commit ? `${version}+${commit}` : version;
