"""Wire formats without HTTP: JSON arrays, .npy/.npz and image files, each decoded within a budget."""

#: A request body as the transport hands it over: bytes, or a bytearray filled in place (a big
#: body is never joined from its pieces: that copy would hold the interpreter for its length).
Body = bytes | bytearray
