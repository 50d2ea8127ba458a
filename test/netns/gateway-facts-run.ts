// Prints the gateway's facts as src/sys/gateway-host.ts reads them (rtnetlink dumps), as one JSON
// line, for a netns test to compare with what `ip -j` prints in the same namespace
// (`ip netns exec <ns> bun gateway-facts-run.ts`).
import { NetlinkGatewayNet } from "../../src/sys/gateway-host.ts";

const net = new NetlinkGatewayNet();
console.log(JSON.stringify(await net.readFacts()));
net.close();
