/* tc programs on the node's network-facing devices (cross-node pod networking).
 *
 *  fast_from_overlay  fast_vxlan ingress: packets decapsulated by the VXLAN device (in
 *                     collect-metadata mode). Another VNI is dropped; a packet for a
 *                     local pod goes straight into it with bpf_redirect_peer; the rest
 *                     (for the node itself) goes to the host stack.
 *  fast_to_overlay    fast_vxlan egress: packets the host stack routes into the tunnel
 *                     (node -> remote pod). Their tunnel key comes from the cluster map;
 *                     an unknown destination is dropped (there is nowhere to send it).
 *                     Packets fast_from_pod redirected here already carry their key.
 *  fast_from_uplink   uplink ingress. Native-routing mode: a packet for a local pod goes
 *                     straight into it; everything else to the host stack. Overlay
 *                     mode: a VXLAN packet (IPv4 underlay, our port and VNI, addressed to
 *                     this node) for a local pod is decapsulated here and goes straight
 *                     into the pod, without the UDP socket lookup, vxlan_rcv and the
 *                     gro_cells round of fast_vxlan; everything else, including
 *                     GSO/GRO aggregates on kernels before BPF_F_ADJ_ROOM_DECAP_L4_UDP,
 *                     takes fast_vxlan as before (see decap_to_pod). */
#include <linux/udp.h>
#include "fast_lib.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int fast_from_overlay(struct __sk_buff *skb)
{
	struct fast_config *cfg = fast_cfg();
	struct bpf_tunnel_key key = {};

	if (!cfg || cfg->mode != FAST_MODE_OVERLAY)
		return TC_ACT_OK;
	/* The VXLAN driver attaches the metadata to every packet it decapsulates; only a
	 * packet that did not come through it (a crafted test packet) has none to check. */
	if (get_tunnel(skb, &key) == 0 && key.tunnel_id != cfg->vni) {
		fast_count(FAST_STAT_DROP_VNI);
		return TC_ACT_SHOT;
	}
	return deliver_from_net(skb);
}

SEC("tc")
int fast_to_overlay(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct fast_config *cfg = fast_cfg();
	struct fast_cluster_pod *remote;
	struct bpf_tunnel_key key = {};
	struct fast_ip dst;

	if (!cfg || cfg->mode != FAST_MODE_OVERLAY)
		goto drop;
	if (get_tunnel(skb, &key) == 0)
		return TC_ACT_OK; /* keyed by fast_from_pod */
	if ((void *)(eth + 1) > data_end)
		goto drop;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			goto drop;
		ipv4_key(&dst, ip->daddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			goto drop;
		__builtin_memcpy(dst.addr, &ip6->daddr, 16);
	} else {
		goto drop;
	}
	remote = bpf_map_lookup_elem(&fast_cpod_v1, &dst);
	if (!remote)
		goto drop;
	/* The stack wrote fast_vxlan's own MAC as source: the receiver would take that for
	 * a loop, so both MACs are set as fast_from_pod sets them. */
	if (set_tunnel(skb, cfg, &remote->node_ip) < 0 ||
	    bpf_skb_store_bytes(skb, 0, cfg->overlay_mac, 12, 0) < 0) {
		fast_count(FAST_STAT_DROP_TUNNEL_KEY);
		return TC_ACT_SHOT;
	}
	fast_count(FAST_STAT_ENCAP_FROM_HOST);
	return TC_ACT_OK;
drop:
	fast_count(FAST_STAT_DROP_NO_REMOTE);
	return TC_ACT_SHOT;
}

/* A VXLAN packet for a local pod, decapsulated with bpf_skb_adjust_room and handed to
 * deliver_from_net (which rewrites the MACs, decrements the TTL once, as the kernel path
 * does, and uses bpf_redirect_peer). Returns -1 for what stays on the kernel path:
 *  - GSO skbs (GRO aggregates on a NIC, unsegmented skbs over veth) on kernels without
 *    BPF_F_ADJ_ROOM_DECAP_L4_UDP (bpf-next, 2026; not 6.18): there adjust_room leaves
 *    skb->encapsulation and SKB_GSO_UDP_TUNNEL set, which breaks segmenting the inner
 *    packet if it is ever forwarded (a NIC would take the inner TCP header for the tunnel's
 *    UDP one); the VXLAN device clears both (iptunnel_pull_offloads). The agent reads from
 *    the kernel's BTF whether the flag exists and sets FAST_CFG_F_GSO_DECAP; should the
 *    kernel still refuse it, adjust_room fails before touching the packet, which then
 *    stays on the kernel path;
 *  - anything not exactly ours: outer IPv6 or IPv4 options, fragments, another port,
 *    flags or VNI (fast_from_overlay counts and drops a foreign VNI), another
 *    destination address, an inner destination that is not a local pod.
 * The outer UDP checksum is not checked (Fast sends none over IPv4); the inner packet's
 * own checksum is still verified by the pod's stack (adjust_room drops a
 * CHECKSUM_UNNECESSARY verdict that covered only the outer headers). */
static __always_inline int decap_to_pod(struct __sk_buff *skb, const struct fast_config *cfg)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct vxlan_wire *vx = (void *)(udp + 1);
	struct ethhdr *inner = (void *)(vx + 1);
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	struct fast_ip dst;
	__be16 proto;

	if ((void *)(inner + 1) > data_end || skb->pkt_type != PACKET_HOST)
		return -1;
	if (skb->gso_size) {
		if (!(cfg->flags & FAST_CFG_F_GSO_DECAP))
			return -1;
		flags |= BPF_F_ADJ_ROOM_DECAP_L4_UDP;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x3fff)) || udp->dest != bpf_htons(cfg->port) ||
	    vx->flags != bpf_htonl(VXLAN_FLAG_VNI) || vx->vni != bpf_htonl(cfg->vni << 8) ||
	    !is_v4_mapped(&cfg->node_ip) || ip->daddr != v4_of(&cfg->node_ip))
		return -1;
	proto = inner->h_proto;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iip = (void *)(inner + 1);

		if ((void *)(iip + 1) > data_end)
			return -1;
		ipv4_key(&dst, iip->daddr);
		flags |= BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *iip6 = (void *)(inner + 1);

		if ((void *)(iip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(dst.addr, &iip6->daddr, 16);
		flags |= BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	} else {
		return -1;
	}
	if (!bpf_map_lookup_elem(&fast_lpod_v1, &dst))
		return -1;
	/* Removes everything between the outer Ethernet header and the inner L3 header; the
	 * outer Ethernet header stays, with the inner ethertype written into it. */
	if (bpf_skb_adjust_room(skb, -(__s32)VXLAN_V4_OUTER, BPF_ADJ_ROOM_MAC, flags) < 0)
		return -1; /* unchanged: a flag this kernel lacks, or no memory to pull the headers */
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0) < 0)
		return TC_ACT_SHOT; /* half-done: the packet is no longer what the kernel expects */
	return deliver_from_net(skb);
}

SEC("tc")
int fast_from_uplink(struct __sk_buff *skb)
{
	struct fast_config *cfg = fast_cfg();
	int ret;

	if (!cfg)
		return TC_ACT_OK;
	if (cfg->mode == FAST_MODE_OVERLAY) {
		if (cfg->flags & FAST_CFG_F_KERNEL_DECAP)
			return TC_ACT_OK;
		ret = decap_to_pod(skb, cfg);
		return ret < 0 ? TC_ACT_OK : ret;
	}
	if (cfg->mode != FAST_MODE_NATIVE)
		return TC_ACT_OK;
	return deliver_from_net(skb);
}
