/**
 * Links the built-in backends in: each module registers its renderer and applier by mode name
 * (see src/render/renderers.ts and src/apply/appliers.ts). Import this once at program entry.
 *
 * @module
 */
import "./render/nftables/nftables_renderer.ts";
import "./render/iptables/iptables_renderer.ts";
import "./apply/nftables_applier.ts";
import "./apply/iptables_applier.ts";
