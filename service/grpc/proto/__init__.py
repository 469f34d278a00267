"""The v2 protocol's messages: relu_serve_v2.proto and the module protoc generates from it."""
