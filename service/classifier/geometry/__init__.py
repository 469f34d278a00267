"""The geometry of the served network: its exact local maps, regions and walks (float64)."""
