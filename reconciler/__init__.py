"""lightspeed-catalog: a catalog-as-code reconciler for Lightspeed Retail (X-Series) stores."""

__version__ = "0.1.0"
