"""Platform providers: one package per Lightspeed platform (`xseries`, `rseries`).

The core will pick one through a registry; a provider never imports another provider.
"""
