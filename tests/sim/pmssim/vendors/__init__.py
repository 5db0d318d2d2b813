"""Vendor profiles. Every module here exposing `VENDORS = {name: VendorAppSubclass}` is
discovered automatically (pmssim.core.vendor.discover)."""
