"""Booting: one job (single), many jobs (batch), soak rounds, the speed bench, core slots, repro bundles."""
