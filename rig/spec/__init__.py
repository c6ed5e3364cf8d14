"""What is to be booted: scenarios, PCI topologies, platform rows (tables only), boot plans, the job matrix."""
