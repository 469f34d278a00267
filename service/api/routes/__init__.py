"""One thin module per route group: parse the wire form, call one feature function, render."""
