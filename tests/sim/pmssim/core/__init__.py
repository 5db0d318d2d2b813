"""Vendor-neutral simulator core. See tests/sim/README.md, section "Extending"."""
