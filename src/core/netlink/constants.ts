// Numbers of the kernel's rtnetlink ABI we use (include/uapi/linux/{netlink,rtnetlink,if_link,
// if_addr,neighbour,fib_rules}.h). Part of the stable user-space ABI: they never change.

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

// ---- nlmsghdr
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP_INTR = 0x10;
// GET requests
export const NLM_F_DUMP = 0x300; // ROOT | MATCH
// NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// ACK flags
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

// socket options (SOL_NETLINK)
export const SOL_NETLINK = 270;
export const NETLINK_ROUTE = 0;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;

// multicast groups (the bitmask form, bound with sockaddr_nl.nl_groups)
export const RTMGRP_LINK = 0x1;
export const RTMGRP_IPV4_IFADDR = 0x10;
export const RTMGRP_IPV4_ROUTE = 0x40;

// ---- message types
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;

export const RTM_NAMES: Record<number, string> = {
  [NLMSG_NOOP]: "NLMSG_NOOP", [NLMSG_ERROR]: "NLMSG_ERROR", [NLMSG_DONE]: "NLMSG_DONE", [NLMSG_OVERRUN]: "NLMSG_OVERRUN",
  [RTM_NEWLINK]: "RTM_NEWLINK", [RTM_DELLINK]: "RTM_DELLINK", [RTM_GETLINK]: "RTM_GETLINK",
  [RTM_NEWADDR]: "RTM_NEWADDR", [RTM_DELADDR]: "RTM_DELADDR", [RTM_GETADDR]: "RTM_GETADDR",
  [RTM_NEWROUTE]: "RTM_NEWROUTE", [RTM_DELROUTE]: "RTM_DELROUTE", [RTM_GETROUTE]: "RTM_GETROUTE",
  [RTM_NEWNEIGH]: "RTM_NEWNEIGH", [RTM_DELNEIGH]: "RTM_DELNEIGH", [RTM_GETNEIGH]: "RTM_GETNEIGH",
  [RTM_NEWRULE]: "RTM_NEWRULE", [RTM_DELRULE]: "RTM_DELRULE", [RTM_GETRULE]: "RTM_GETRULE",
};

// ---- links (struct ifinfomsg, 16 bytes)
export const IFINFOMSG_LEN = 16;
export const IFF_UP = 0x1;
export const IFF_LOWER_UP = 0x10000;
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_TXQLEN = 13;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_GROUP = 27;
export const IFLA_EXT_MASK = 29;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
/** IFLA_EXT_MASK value iproute2 sends with link dumps: VFs, and no statistics. */
export const RTEXT_FILTER_VF = 1;
export const RTEXT_FILTER_SKIP_STATS = 8;

export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_GROUP = 2; // the remote (unicast) or the multicast group
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_TTL = 5;
export const IFLA_VXLAN_LEARNING = 7;
export const IFLA_VXLAN_PORT = 15; // network byte order

// ---- addresses (struct ifaddrmsg, 8 bytes)
export const IFADDRMSG_LEN = 8;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_CACHEINFO = 6;
export const IFA_FLAGS = 8;
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_PERMANENT = 0x80;
/** ifa_cacheinfo lifetime meaning "forever". */
export const INFINITY_LIFE_TIME = 0xffffffff;

// ---- routes (struct rtmsg, 12 bytes)
export const RTMSG_LEN = 12;
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_IIF = 3;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;
export const RTA_PREF = 20;
export const RTM_F_LOOKUP_TABLE = 0x1000;
export const RTNH_F_ONLINK = 0x4;

export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;

export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTN_THROW = 9;
export const ROUTE_TYPE_NAMES: Record<number, string> = {
  0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat",
};

// ---- policy rules (struct fib_rule_hdr, 12 bytes)
export const FIB_RULE_HDR_LEN = 12;
export const FRA_DST = 1;
export const FRA_SRC = 2;
export const FRA_IIFNAME = 3;
export const FRA_PRIORITY = 6;
export const FRA_FWMARK = 10;
export const FRA_SUPPRESS_PREFIXLEN = 14;
export const FRA_TABLE = 15;
export const FRA_OIFNAME = 17;
export const FRA_PROTOCOL = 21;
export const FR_ACT_TO_TBL = 1;
export const FR_ACT_UNREACHABLE = 7;

// ---- neighbours (struct ndmsg, 12 bytes)
export const NDMSG_LEN = 12;
/** Neighbour table parameters (`ip ntable change`): struct ndtmsg, its attributes and the nested parameters used. */
export const RTM_SETNEIGHTBL = 67;
export const NDTMSG_LEN = 4;
export const NDTA_NAME = 1;
export const NDTA_PARMS = 6;
export const NDTPA_IFINDEX = 1;
export const NDTPA_RETRANS_TIME = 5;
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_CACHEINFO = 3;
export const NDA_PROBES = 4;
export const NDA_VLAN = 5;
export const NDA_PORT = 6;
export const NDA_VNI = 7;
export const NDA_IFINDEX = 8;
export const NDA_MASTER = 9;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
