"""The objects a lab is made of (namespaces, veth pairs, bridges, routes, kernel
settings, NAT rules, shaping, VXLAN tunnels, hosts files).  Each builds its commands and
steps purely; its actions run through the runner."""
