// Issue 11 §4's container-restart matrix (test/netns/restart-matrix.ts) against a real OpenVPN
// client in the gateway pod (issue 17: restarts run against both VPN kinds).
import { restartMatrix } from "./restart-matrix.ts";

restartMatrix("openvpn");
