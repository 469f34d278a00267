"""Wire formats without HTTP: JSON arrays, .npy/.npz and image files, each decoded within a budget."""
