// Issue 11 §4's container-restart matrix (test/netns/restart-matrix.ts) against the veth stand-in VPN.
import { restartMatrix } from "./restart-matrix.ts";

restartMatrix("veth");
