/* Map layouts shared by every Fast eBPF program.
 *
 * The TypeScript codecs in src/dataplane/bpf/map-layouts.ts mirror these structs
 * byte for byte; a layout change must bump the _vN suffix of the map name so that
 * an agent never adopts a pinned map whose layout it does not understand. */
#ifndef FAST_MAPS_H
#define FAST_MAPS_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* Sized for a real node: thousands of pods per node, a large cluster in the cluster map. */
#define FAST_MAX_LOCAL_PODS   16384
#define FAST_MAX_CLUSTER_PODS 262144
#define FAST_MAX_LOCAL_DEVS   16384

/* Every address is stored as 16 bytes; IPv4 uses the IPv4-mapped form ::ffff:a.b.c.d
 * so one map serves both families. */
struct fast_ip {
	__u8 addr[16];
};

/* A pod on this node, keyed by its address. */
struct fast_local_pod {
	__u32 host_ifindex;   /* host-side veth, where the pod's packets enter */
	__u32 pod_ifindex;    /* eth0 inside the pod's namespace (informational) */
	__u8 pod_mac[6];      /* the only source MAC the pod may use */
	__u8 host_mac[6];     /* the host-side veth MAC, the pod's gateway MAC */
	__u32 flags;
};

/* A pod on another node, keyed by its address (filled by the cross-node work). Remote
 * nodes' own addresses are entries too (FAST_CPOD_F_NODE): a pod's packets to another node
 * then take the same path as to that node's pods, and the node's replies (routed to the
 * pod through the tunnel or the uplink) come back symmetrically. */
struct fast_cluster_pod {
	struct fast_ip node_ip; /* underlay address of the node hosting the pod */
	__u32 flags;
	__u32 reserved;
};

#define FAST_CPOD_F_NODE 0x1 /* the key is a remote node's own address, not a pod's */

enum fast_mode {
	FAST_MODE_LOCAL = 0,   /* no cross-node path: remote destinations go to the host stack */
	FAST_MODE_OVERLAY = 1, /* VXLAN in collect-metadata mode, tunnel key set by eBPF */
	FAST_MODE_NATIVE = 2,  /* no encapsulation: bpf_redirect_neigh to the remote node */
};

/* The node's cross-node settings, the only element of fast_cfg_v1. */
struct fast_config {
	__u32 mode;             /* enum fast_mode */
	__u32 overlay_ifindex;  /* fast_vxlan */
	__u32 uplink_ifindex;   /* the device holding node_ip */
	__u32 vni;
	struct fast_ip node_ip; /* this node's underlay address (tunnel source) */
	/* Inner Ethernet header of tunnelled packets, destination then source, so that one
	 * store writes both. The destination is fast_vxlan's MAC, the same on every node,
	 * so the receiving device takes the frame as its own; the source must differ from
	 * it (the vxlan driver drops frames carrying its own MAC as loops). */
	__u8 overlay_mac[6];
	__u8 overlay_src_mac[6];
	__u16 port;             /* UDP port of fast_vxlan (eBPF encapsulation's destination port) */
	__u16 flags;            /* FAST_CFG_F_* */
	__u32 reserved;
};

/* fast_config.flags */
#define FAST_CFG_F_EBPF_ENCAP 0x1 /* overlay: encapsulate in eBPF, not through fast_vxlan */
#define FAST_CFG_F_GSO_DECAP  0x2 /* overlay: the kernel takes BPF_F_ADJ_ROOM_DECAP_L4_UDP (agent's probe) */
#define FAST_CFG_F_KERNEL_DECAP 0x4 /* overlay: the uplink decapsulates nothing; fast_vxlan takes every packet */

enum fast_dev_kind {
	FAST_DEV_POD_VETH = 1,
	FAST_DEV_OVERLAY = 2,
	FAST_DEV_UPLINK = 3,
};

/* A device the datapath knows on this node, keyed by ifindex. */
struct fast_local_dev {
	__u8 mac[6];
	__u16 kind;
	__u32 flags;
	char name[16];
};

enum fast_stat {
	FAST_STAT_REDIRECT_LOCAL = 0,
	FAST_STAT_PASS_STACK = 1,
	FAST_STAT_DROP_SPOOF_SRC_IP = 2,
	FAST_STAT_DROP_SPOOF_SRC_MAC = 3,
	FAST_STAT_DROP_UNKNOWN_PROTO = 4,
	FAST_STAT_DROP_MALFORMED = 5,
	FAST_STAT_REDIRECT_TUNNEL = 6,   /* pod -> remote, overlay: taken into the tunnel (either encapsulation) */
	FAST_STAT_REDIRECT_NEIGH = 7,
	FAST_STAT_DELIVER_FROM_NET = 8,
	FAST_STAT_DROP_NO_REMOTE = 9,    /* routed into fast_vxlan by the stack, no cluster entry */
	FAST_STAT_DROP_VNI = 10,         /* arrived on fast_vxlan with another VNI */
	FAST_STAT_ENCAP_FROM_HOST = 11,  /* node stack -> remote pod, tunnel key set on egress */
	FAST_STAT_DROP_TUNNEL_KEY = 12,  /* bpf_skb_set_tunnel_key failed */
	FAST_STAT_PASS_FROM_NET = 13,    /* from another node, not for a local pod: host stack */
	FAST_STAT_ENCAP_EBPF = 14,       /* encapsulated by eBPF, out of the uplink (subset of redirect_tunnel) */
	FAST_STAT_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FAST_MAX_LOCAL_PODS);
	__type(key, struct fast_ip);
	__type(value, struct fast_local_pod);
} fast_lpod_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FAST_MAX_CLUSTER_PODS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fast_ip);
	__type(value, struct fast_cluster_pod);
} fast_cpod_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FAST_MAX_LOCAL_DEVS);
	__type(key, __u32);
	__type(value, struct fast_local_dev);
} fast_ldev_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fast_config);
} fast_cfg_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FAST_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fast_stats_v1 SEC(".maps");

static __always_inline void fast_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&fast_stats_v1, &stat);
	if (v)
		*v += 1;
}

static __always_inline struct fast_config *fast_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fast_cfg_v1, &zero);
}

#endif
