"""Lightspeed Retail X-Series (formerly Vend) as a provider: see provider.py."""
