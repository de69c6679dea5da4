"""Capacity planning: measured costs per event (`constants`) and the pure model built on them (`model`)."""
