"""What a boot needs on disk: the cache (lock, manifests, Debian fetches), dom0's initramfs, kernels built from source."""
