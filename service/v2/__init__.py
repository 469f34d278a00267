"""The Open Inference Protocol (KServe v2) data plane, protocol-free: the HTTP routes and the gRPC
servicer both call DataPlane; the classifier and every activation function are its models."""
