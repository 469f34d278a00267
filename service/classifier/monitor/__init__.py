"""Live monitoring of the served ReLU network: dead units per layer and out-of-distribution scores."""
